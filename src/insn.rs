// SPDX-License-Identifier: GPL-2.0
//! A64 instruction classification and encoding for optprobe trampolines.
//!
//! Kernel-free and `no_std`: the module includes this file, and the host crate in
//! `tests/host` compiles the very same file for unit tests and oracle sweeps.
//!
//! Instructions are modelled the way `arch/arm64/include/asm/insn.h` does: a
//! mask/value table with one row per instruction class. Classification is
//! fail-closed: rows that say "runs out of line" are an allowlist, PC-relative
//! rows are named so they can be relocated, and any word that matches no row is
//! rejected.

/// Size of one A64 instruction in bytes.
pub const INSN_SIZE: usize = 4;

/// `ERANGE`: a branch target is out of the encodable range.
pub const ERANGE: i32 = 34;
/// `EINVAL`: misaligned address or operand.
pub const EINVAL: i32 = 22;

/// `NOP` (C6.2.238).
pub const NOP: u32 = 0xd503_201f;
/// `BRK #0x004`, the kprobes breakpoint (`BRK64_OPCODE_KPROBES`).
pub const BRK_KPROBES: u32 = 0xd420_0080;
/// `MRS X2, PAN` (S3_0_C4_C2_3): PSTATE.PAN at its SPSR position (bit 22).
pub const MRS_X2_PAN: u32 = 0xd538_4262;
/// `MRS X2, ICC_PMR_EL1` (S3_0_C4_C6_0): the GICv3 priority mask.
pub const MRS_X2_ICC_PMR_EL1: u32 = 0xd538_4602;
/// `ORR X1, X1, X2`.
pub const ORR_X1_X1_X2: u32 = 0xaa02_0021;
/// `ADD X1, X1, #9`: pstate's mode `PSR_MODE_EL2h` (EL2 with SP_EL2) into
/// M[3:0], which NZCV and DAIF leave clear, for a kernel that runs at EL2.
pub const ADD_X1_X1_EL2H: u32 = 0x9100_2421;
/// `BRK #0x100`, the kernel's fault breakpoint (`AARCH64_BREAK_FAULT`): an
/// unconditional "this must never run" trap, never taken for a kprobe.
pub const BRK_FAULT: u32 = 0xd420_2000;
/// Fixed bits of `B imm26` (C6.2.33).
const B_OPCODE: u32 = 0x1400_0000;
/// Field mask of imm26.
const IMM26_MASK: u32 = 0x03ff_ffff;
/// Reach of `B`/`BL`: +/-128 MiB.
pub const B_RANGE: i64 = 128 << 20;

/// `MOV X9, X29` (alias of `ORR X9, XZR, X29`, C6.2.233): frame link for
/// probes taken after the function built its frame record.
pub const MOV_X9_X29: u32 = 0xaa1d_03e9;

/// Why an instruction cannot run out of line in a trampoline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// `BTI`, `PACIASP`, `PACIBSP`: an indirect branch may land here, and a
    /// `B` in its place would raise a Branch Target exception.
    BtiLandingPad,
    /// A hint whose effect is not known to be position independent.
    Hint,
    /// Exception generation (`SVC`, `HVC`, `SMC`, `BRK`, `HLT`, `DCPS`).
    Exception,
    /// Exception return or debug state change (`ERET*`, `DRPS`).
    ExceptionReturn,
    /// `BLR*`: the link register would point into the trampoline.
    IndirectCall,
    /// `MSR`: writes PSTATE or a system register.
    SystemRegisterWrite,
    /// Load/store exclusive or ordered (`LDXR`, `STXR`, `LDAR`, ...).
    Exclusive,
    /// `CPY*`/`SET*`: the three-instruction sequence must stay together.
    MemoryCopySet,
    /// Unallocated, reserved or unsupported encoding (SVE, SME, `UDF`).
    Unallocated,
}

impl Reject {
    /// Short, stable text for listings and logs, as a C string: the C ABI
    /// hands it out (`optprobe_reason`), so it must be static.
    pub const fn as_cstr(self) -> &'static core::ffi::CStr {
        match self {
            Reject::BtiLandingPad => c"BTI landing pad",
            Reject::Hint => c"hint instruction",
            Reject::Exception => c"exception-generating instruction",
            Reject::ExceptionReturn => c"exception return",
            Reject::IndirectCall => c"indirect call (BLR)",
            Reject::SystemRegisterWrite => c"system register write (MSR)",
            Reject::Exclusive => c"exclusive or ordered load/store",
            Reject::MemoryCopySet => c"memory copy/set (MOPS)",
            Reject::Unallocated => c"unallocated or unsupported encoding",
        }
    }

    /// [`Reject::as_cstr`] as `str`.
    pub const fn as_str(self) -> &'static str {
        match self.as_cstr().to_str() {
            Ok(s) => s,
            Err(_) => "?",
        }
    }
}

/// PC-relative instruction kinds: correct only at their own address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcRel {
    /// `ADR Xd, label` (C6.2.10).
    Adr,
    /// `ADRP Xd, label` (C6.2.11).
    Adrp,
    /// `LDR`/`LDRSW`/`PRFM` (literal), general registers (C6.2.167, C6.2.179, C6.2.248).
    LdrLiteral,
    /// `LDR (literal, SIMD&FP)` (C7.2.192).
    LdrLiteralFp,
    /// `B imm26` (C6.2.33).
    B,
    /// `BL imm26` (C6.2.35).
    Bl,
    /// `B.cond` and `BC.cond` (C6.2.34, C6.2.36).
    BCond,
    /// `CBZ`/`CBNZ` (C6.2.47, C6.2.46).
    Cbz,
    /// `TBZ`/`TBNZ` (C6.2.375, C6.2.374).
    Tbz,
}

impl PcRel {
    /// Short, stable text for listings and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            PcRel::Adr => "ADR",
            PcRel::Adrp => "ADRP",
            PcRel::LdrLiteral => "LDR literal",
            PcRel::LdrLiteralFp => "LDR literal (FP)",
            PcRel::B => "B",
            PcRel::Bl => "BL",
            PcRel::BCond => "B.cond",
            PcRel::Cbz => "CBZ/CBNZ",
            PcRel::Tbz => "TBZ/TBNZ",
        }
    }
}

/// Outcome of classifying one instruction word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Behaves identically at any address: copy it into the trampoline.
    OutOfLine,
    /// Depends on its own address: must be relocated.
    PcRelative(PcRel),
    /// Must never be replaced by a branch to a trampoline.
    Rejected(Reject),
}

/// One row of the decode table: `word & mask == value` selects `class`.
struct Row {
    mask: u32,
    value: u32,
    class: Class,
}

const fn row(mask: u32, value: u32, class: Class) -> Row {
    Row { mask, value, class }
}

use Class::{OutOfLine as OOL, PcRelative as Pc, Rejected as Rj};

/// The decode table. The first matching row wins, so specific rows precede the
/// group rows they carve out of. Section numbers refer to the Arm ARM (DDI 0487)
/// chapter C4, "A64 Instruction Set Encoding", and C6 for single instructions.
static TABLE: &[Row] = &[
    // --- Hints (C4.1.94.5, HINT C6.2.126) ---
    // BTI, BTI c, BTI j, BTI jc: landing pads for indirect branches (C6.2.41).
    row(0xffff_ff3f, 0xd503_241f, Rj(Reject::BtiLandingPad)),
    // PACIASP, PACIBSP: implicit BTI c landing pads (C6.2.208, C6.2.214).
    row(0xffff_ffbf, 0xd503_233f, Rj(Reject::BtiLandingPad)),
    // NOP: nothing to do anywhere (C6.2.238).
    row(0xffff_ffff, NOP, OOL),
    // PACIAZ, PACIBZ: sign x30 with zero modifier; position independent.
    row(0xffff_ffbf, 0xd503_231f, OOL),
    // PACIA1716, PACIB1716: sign x17 with x16; position independent.
    row(0xffff_ffbf, 0xd503_211f, OOL),
    // XPACLRI: strip PAC from x30; position independent.
    row(0xffff_ffff, 0xd503_20ff, OOL),
    // Every other hint (AUTIASP, WFI, YIELD, ESB, CSDB, ...): the kernel's
    // kprobes refuses them too; stay conservative.
    row(0xffff_f01f, 0xd503_201f, Rj(Reject::Hint)),
    // --- Barriers (C4.1.94.6): CLREX, DSB, DMB, ISB, SB; no PC dependence ---
    row(0xffff_f01f, 0xd503_301f, OOL),
    // --- PSTATE and system registers (C4.1.94.7 - C4.1.94.12) ---
    // MSR (immediate): writes PSTATE fields (PAN, DAIF, SSBS, ...).
    row(0xfff8_f01f, 0xd500_401f, Rj(Reject::SystemRegisterWrite)),
    // MSR (register): arbitrary system register writes.
    row(0xfff0_0000, 0xd510_0000, Rj(Reject::SystemRegisterWrite)),
    // MRS: the trampoline takes no exception and restores NZCV, so every
    // readable register reads the same as at the probe site.
    row(0xfff0_0000, 0xd530_0000, OOL),
    // SYS/SYSL (DC, IC, TLBI, AT): operate on addresses in registers.
    row(0xffd8_0000, 0xd508_0000, OOL),
    // Anything else in the system group (TSTART, WFET, SYSP, ...).
    row(0xffc0_0000, 0xd500_0000, Rj(Reject::Unallocated)),
    // --- Exception generation (C4.1.94.3): SVC, HVC, SMC, BRK, HLT, DCPS ---
    row(0xff00_0000, 0xd400_0000, Rj(Reject::Exception)),
    // --- Unconditional branch (register) (C4.1.94.13) ---
    // BR, BRAA(Z), BRAB(Z): target in a register; no link.
    row(0xffff_fc1f, 0xd61f_0000, OOL),
    row(0xfeff_f800, 0xd61f_0800, OOL),
    // RET, RETAA, RETAB: target in x30 (or Rn); no link.
    row(0xffff_fc1f, 0xd65f_0000, OOL),
    row(0xffff_fbff, 0xd65f_0bff, OOL),
    // BLR, BLRAA(Z), BLRAB(Z): x30 would be a trampoline address, and the
    // callee may sleep while it is live.
    row(0xffff_fc1f, 0xd63f_0000, Rj(Reject::IndirectCall)),
    row(0xfeff_f800, 0xd63f_0800, Rj(Reject::IndirectCall)),
    // ERET, ERETAA/AB, DRPS and the rest of the group.
    row(0xfe00_0000, 0xd600_0000, Rj(Reject::ExceptionReturn)),
    // --- Immediate branches (C4.1.94.1, C4.1.94.2, C4.1.94.14, C4.1.94.15) ---
    row(0xfc00_0000, 0x1400_0000, Pc(PcRel::B)),
    row(0xfc00_0000, 0x9400_0000, Pc(PcRel::Bl)),
    // B.cond (o0 = 0) and BC.cond (o0 = 1); o1 (bit 24) must be 0.
    row(0xff00_0000, 0x5400_0000, Pc(PcRel::BCond)),
    row(0x7e00_0000, 0x3400_0000, Pc(PcRel::Cbz)),
    row(0x7e00_0000, 0x3600_0000, Pc(PcRel::Tbz)),
    // Rest of branches/exception/system: unallocated.
    row(0x1c00_0000, 0x1400_0000, Rj(Reject::Unallocated)),
    // --- PC-relative addressing (C4.1.93.1) ---
    row(0x9f00_0000, 0x1000_0000, Pc(PcRel::Adr)),
    row(0x9f00_0000, 0x9000_0000, Pc(PcRel::Adrp)),
    // --- Data processing, immediate (C4.1.93): ADD/SUB, logical, MOVx, BFM, EXTR ---
    row(0x1c00_0000, 0x1000_0000, OOL),
    // --- Loads and stores (C4.1.94 "Loads and Stores") ---
    // Load register (literal): opc = 11 with V = 1 is unallocated.
    row(0xff00_0000, 0xdc00_0000, Rj(Reject::Unallocated)),
    row(0x3f00_0000, 0x1800_0000, Pc(PcRel::LdrLiteral)),
    row(0x3f00_0000, 0x1c00_0000, Pc(PcRel::LdrLiteralFp)),
    // Memory copy and set (FEAT_MOPS), as insn.h's aarch64_insn_is_mops().
    row(0x3b20_0c00, 0x1900_0400, Rj(Reject::MemoryCopySet)),
    // Load/store exclusive and ordered: a trampoline between LDXR and STXR
    // clears the monitor on some cores; the kernel refuses these as well.
    row(0x3f00_0000, 0x0800_0000, Rj(Reject::Exclusive)),
    // All other loads and stores address memory through registers only.
    row(0x0a00_0000, 0x0800_0000, OOL),
    // --- Data processing, register (C4.1.95) ---
    row(0x0e00_0000, 0x0a00_0000, OOL),
    // --- SIMD and floating point data processing (C4.1.96) ---
    row(0x0e00_0000, 0x0e00_0000, OOL),
];

/// Classify one instruction word. Total: every word gets exactly one class.
pub fn classify(word: u32) -> Class {
    for r in TABLE {
        if word & r.mask == r.value {
            return r.class;
        }
    }
    // op0 = 0000 (UDF/reserved), 0001 (SME), 0010 (SVE), 0011: unallocated here.
    Class::Rejected(Reject::Unallocated)
}

/// Classify the instruction at a probe site, given whether the kernel
/// enforces BTI (`system_supports_bti_kernel()`). Only an enforced landing
/// pad must stay: without enforcement kernel text is not mapped guarded, so
/// `BTI` is a plain hint and `PACIASP`/`PACIBSP` sign x30 with the current
/// sp, which the trampoline restores before it runs the instruction; both
/// behave the same at any address.
pub fn classify_site(word: u32, landing_pads_enforced: bool) -> Class {
    match classify(word) {
        Class::Rejected(Reject::BtiLandingPad) if !landing_pads_enforced => Class::OutOfLine,
        class => class,
    }
}

/// Is `word` a landing pad an indirect call may land on at a function's
/// entry: `BTI c` or `BTI jc` (C6.2.41: BTI with targets c = 0b01 or
/// jc = 0b11)? What a BTI kernel's functions start with; src/entry.rs
/// delivers probes there through ftrace. `BTI`, `BTI j` and the implicit
/// pads `PACIASP`/`PACIBSP` do not start functions.
pub fn is_entry_landing_pad(word: u32) -> bool {
    word & 0xffff_ff3f == 0xd503_241f && (word >> 6) & 1 == 1
}

/// Encode `B target` placed at `pc`.
///
/// Returns `Err(ERANGE)` when the target is out of +/-128 MiB and `Err(EINVAL)`
/// when either address is not 4-byte aligned.
pub fn encode_b(pc: u64, target: u64) -> Result<u32, i32> {
    if pc % 4 != 0 || target % 4 != 0 {
        return Err(EINVAL);
    }
    // CAST: two's-complement difference of two kernel addresses.
    let offset = target.wrapping_sub(pc) as i64;
    if !(-B_RANGE..B_RANGE).contains(&offset) {
        return Err(ERANGE);
    }
    // CAST: offset / 4 fits in 26 signed bits, checked above.
    Ok(B_OPCODE | ((offset >> 2) as u32 & IMM26_MASK))
}

/// Decode the target of a `B`/`BL` at `pc`, or `None` for other words.
pub fn decode_b_target(pc: u64, word: u32) -> Option<u64> {
    if word & 0x7c00_0000 != B_OPCODE {
        return None;
    }
    // CAST: sign-extend imm26 through i32 arithmetic shifts.
    let imm = (((word & IMM26_MASK) << 6) as i32 >> 6) as i64;
    Some(pc.wrapping_add((imm << 2) as u64))
}

/// Does this word build the frame record's link, `MOV X29, SP` or
/// `ADD X29, SP, #imm`? Used to tell a prologue from a function body.
pub fn is_frame_setup(word: u32) -> bool {
    // ADD X29, SP, #imm12 (shift 0), which includes MOV X29, SP.
    word & 0xffc0_03ff == 0x9100_03fd
}

/// Does this word store the frame record, `STP X29, X30, [SP, #imm]` (signed
/// offset) or `STP X29, X30, [SP, #imm]!` (pre-index)?
pub fn is_frame_record_store(word: u32) -> bool {
    // Rt = x29, Rt2 = x30, Rn = sp; imm7 (bits 21:15) free.
    let fixed = word & 0xffc0_7fff;
    fixed == 0xa980_7bfd || fixed == 0xa900_7bfd
}

/// May this word write x29? Fail closed: true unless the encoding says it
/// does not (stores leave Rt alone, branches have no destination register).
pub fn may_write_x29(word: u32) -> bool {
    const FP: u32 = 29;
    let rt = word & 0x1f;
    let rn = (word >> 5) & 0x1f;
    let rt2 = (word >> 10) & 0x1f;
    // Branches, exception generation, system: only MRS and SYSL write Rt.
    if word & 0x1c00_0000 == 0x1400_0000 {
        let mrs = word & 0xfff0_0000 == 0xd530_0000;
        let sysl = word & 0xfff8_0000 == 0xd528_0000;
        return (mrs || sysl) && rt == FP;
    }
    // Loads and stores.
    if word & 0x0a00_0000 == 0x0800_0000 {
        let pair = word & 0x3a00_0000 == 0x2800_0000;
        if pair {
            let load = word & (1 << 22) != 0;
            let writeback = matches!((word >> 23) & 3, 1 | 3);
            return (load && (rt == FP || rt2 == FP)) || (writeback && rn == FP);
        }
        // Single register, immediate or register offset, general registers.
        let single = word & 0x3800_0000 == 0x3800_0000;
        // Atomic memory operations (LDADD, SWP, ...: bit 21 set, bits 11:10
        // zero, not the unsigned-offset form) write Rt whatever A and R are.
        let atomic = single && word & (1 << 24) == 0 && word & (1 << 21) != 0 && (word >> 10) & 3 == 0;
        if atomic {
            return rt == FP;
        }
        if single && word & (1 << 26) == 0 {
            let store = (word >> 22) & 3 == 0;
            let writeback = word & (1 << 24) == 0 && word & (1 << 21) == 0 && matches!((word >> 10) & 3, 1 | 3);
            return (!store && rt == FP) || (writeback && rn == FP);
        }
        // Anything else (exclusives and CAS, which also write Rs; SIMD&FP;
        // literal): any register field.
        let rs = (word >> 16) & 0x1f;
        return rt == FP || rn == FP || rs == FP || rt2 == FP;
    }
    // Data processing: Rd.
    rt == FP
}

/// Does this word end straight-line execution: `B`, `BR`, `RET`, `ERET`
/// and their authenticated forms? What follows is reached only by branches.
/// Calls (`BL`, `BLR`) return and do not end it.
pub fn ends_straight_line(word: u32) -> bool {
    let b = word & 0xfc00_0000 == 0x1400_0000;
    // Unconditional branch (register): opc (bits 24:21) x001 is BLR, BLRAA,
    // BLRAB; the rest (BR, BRAA, RET, RETAA, ERET, ...) do not come back.
    let branch_reg = word & 0xfe00_0000 == 0xd600_0000 && (word >> 21) & 0x7 != 1;
    // BRK (BUG()) and UDF trap: compilers lay unrelated code after them.
    let trap = word & 0xffe0_001f == 0xd420_0000 || word & 0xffff_0000 == 0;
    b || branch_reg || trap
}

/// Is this word an indirect jump (`BR` and its authenticated forms), whose
/// targets a scan cannot know?
pub fn is_indirect_jump(word: u32) -> bool {
    // BR, BRAAZ/BRABZ (opc 0000) and BRAA/BRAB (opc 1000).
    word & 0xfe00_0000 == 0xd600_0000 && (word >> 21) & 0x7 == 0
}

// --- Relocation --------------------------------------------------------------

/// Most instructions a relocation emits (branch back included).
pub const MAX_RELOC: usize = 6;

/// `LDR Xt, label` (literal, C6.2.167), imm19 and Rt zero.
const LDR_X_LIT: u32 = 0x5800_0000;
/// `LDR Wt, [Xn]` (unsigned offset 0, C6.2.166).
const LDR_W_REG: u32 = 0xb940_0000;
/// `LDR Xt, [Xn]`.
const LDR_X_REG: u32 = 0xf940_0000;
/// `LDRSW Xt, [Xn]` (C6.2.178).
const LDRSW_REG: u32 = 0xb980_0000;
/// `LDR St, [Xn]` (SIMD&FP, unsigned offset 0, C7.2.191).
const LDR_S_REG: u32 = 0xbd40_0000;
/// `LDR Dt, [Xn]`.
const LDR_D_REG: u32 = 0xfd40_0000;
/// `LDR Qt, [Xn]`.
const LDR_Q_REG: u32 = 0x3dc0_0000;
/// `STR X16, [SP, #-16]!`: spill the scratch register (C6.2.321).
const SPILL_X16: u32 = 0xf81f_0ff0;
/// `LDR X16, [SP], #16`: reload it.
const RELOAD_X16: u32 = 0xf841_07f0;
/// Register number of the scratch register used for SIMD&FP literals.
const SCRATCH: u32 = 16;

fn sign_extend(value: u32, bits: u32) -> i64 {
    // CAST: shift the field to the top, then arithmetic-shift back.
    (((value as u64) << (64 - bits)) as i64) >> (64 - bits)
}

/// Encode `LDR Xt, label` placed at `pc` loading from `lit` (+/-1 MiB).
pub fn encode_ldr_literal(rt: u32, pc: u64, lit: u64) -> Result<u32, i32> {
    if rt > 31 || pc % 4 != 0 || lit % 4 != 0 {
        return Err(EINVAL);
    }
    // CAST: two's-complement difference.
    let off = lit.wrapping_sub(pc) as i64;
    if !(-(1 << 20)..(1 << 20)).contains(&off) {
        return Err(ERANGE);
    }
    // CAST: fits 19 signed bits after the range check.
    Ok(LDR_X_LIT | ((((off >> 2) as u32) & 0x7ffff) << 5) | rt)
}

/// The address an ADR/ADRP at `pc` computes.
fn adr_target(word: u32, pc: u64, page: bool) -> u64 {
    let imm = ((word >> 3) & 0x1f_fffc) | ((word >> 29) & 3);
    let imm = sign_extend(imm, 21);
    if page {
        // CAST: page arithmetic on addresses.
        (pc & !0xfff).wrapping_add((imm << 12) as u64)
    } else {
        pc.wrapping_add(imm as u64)
    }
}

/// Target of an imm19 (B.cond, CBZ, LDR literal) or imm14 (TBZ) field.
fn imm_target(word: u32, pc: u64, lsb: u32, bits: u32) -> u64 {
    let imm = sign_extend((word >> lsb) & ((1 << bits) - 1), bits);
    // CAST: byte offset of a word-scaled immediate.
    pc.wrapping_add((imm << 2) as u64)
}

/// Where a PC-relative instruction at `pc` branches or points to.
pub fn pcrel_target(kind: PcRel, word: u32, pc: u64) -> u64 {
    match kind {
        PcRel::Adr => adr_target(word, pc, false),
        PcRel::Adrp => adr_target(word, pc, true),
        PcRel::B | PcRel::Bl => {
            let imm = sign_extend(word & IMM26_MASK, 26);
            // CAST: byte offset.
            pc.wrapping_add((imm << 2) as u64)
        }
        PcRel::Tbz => imm_target(word, pc, 5, 14),
        PcRel::BCond | PcRel::Cbz | PcRel::LdrLiteral | PcRel::LdrLiteralFp => imm_target(word, pc, 5, 19),
    }
}

/// Do the two words just before a function (`lo` at entry - 8, `hi` at
/// entry - 4) look like the slot where ftrace with
/// `DYNAMIC_FTRACE_WITH_CALL_OPS` keeps that function's 64-bit `ftrace_ops`
/// pointer: two NOPs (before ftrace fills it) or a kernel pointer?
/// Fail-closed: code that happens to look like this is refused too.
pub fn is_ftrace_ops_literal(lo: u32, hi: u32) -> bool {
    let value = (u64::from(hi) << 32) | u64::from(lo);
    (lo == NOP && hi == NOP) || value >> 48 == 0xffff
}

/// The address a relocated copy of `word` (at `pc`) must branch to directly,
/// for the PC-relative branches; `None` for everything else (other relocated
/// forms reach any distance through a literal). The trampoline has to be
/// placed within `B` range of it as well as of the probe site.
pub fn direct_branch_target(word: u32, pc: u64) -> Option<u64> {
    match classify(word) {
        Class::PcRelative(kind @ (PcRel::B | PcRel::Bl | PcRel::BCond | PcRel::Cbz | PcRel::Tbz)) => {
            Some(pcrel_target(kind, word, pc))
        }
        _ => None,
    }
}

/// Code that does, when placed at `at`, what the original did at its own
/// address; its optional literal goes at `lit` (8-byte aligned, near `at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relocated {
    /// The instructions; the first `len` are used.
    pub words: [u32; MAX_RELOC],
    /// How many instructions.
    pub len: usize,
    /// The 64-bit literal the code loads, if any.
    pub literal: Option<u64>,
}

struct Emitter {
    out: Relocated,
    at: u64,
}

impl Emitter {
    fn new(at: u64) -> Self {
        Self { out: Relocated { words: [0; MAX_RELOC], len: 0, literal: None }, at }
    }

    /// Address of the next instruction.
    fn pc(&self) -> u64 {
        // CAST: len <= MAX_RELOC.
        self.at + 4 * self.out.len as u64
    }

    fn emit(&mut self, word: u32) -> Result<(), i32> {
        if self.out.len == MAX_RELOC {
            return Err(EINVAL);
        }
        self.out.words[self.out.len] = word;
        self.out.len += 1;
        Ok(())
    }

    fn branch(&mut self, target: u64) -> Result<(), i32> {
        let word = encode_b(self.pc(), target)?;
        self.emit(word)
    }
}

/// Relocate `word`, originally at `pc`, to run at `at`, then continue where
/// the original would have: `pc + 4`, or its branch target.
///
/// Rules: write only the registers the original writes (the SIMD&FP literal
/// load borrows x16 and restores it from the stack); set no flags; a BL sets
/// x30 to `pc + 4`, so the callee returns straight to the probed code.
/// `Err(ERANGE)` means a target is out of reach from `at`; `Err(EINVAL)`
/// means the word must not run out of line at all.
pub fn relocate(word: u32, pc: u64, at: u64, lit: u64) -> Result<Relocated, i32> {
    relocate_site(word, pc, at, lit, true)
}

/// [`relocate`] for a site classified by [`classify_site`]: where BTI is not
/// enforced, landing pads run out of line like any hint that is.
pub fn relocate_site(word: u32, pc: u64, at: u64, lit: u64, landing_pads_enforced: bool) -> Result<Relocated, i32> {
    let next = pc.wrapping_add(INSN_SIZE as u64);
    let mut e = Emitter::new(at);
    let rt = word & 0x1f;
    let kind = match classify_site(word, landing_pads_enforced) {
        Class::OutOfLine => {
            e.emit(word)?;
            e.branch(next)?;
            return Ok(e.out);
        }
        Class::Rejected(_) => return Err(EINVAL),
        Class::PcRelative(kind) => kind,
    };
    let target = pcrel_target(kind, word, pc);
    match kind {
        PcRel::Adr | PcRel::Adrp => {
            // Rd = target, as a literal: one load, no other register.
            e.out.literal = Some(target);
            let load = encode_ldr_literal(rt, e.pc(), lit)?;
            e.emit(load)?;
            e.branch(next)?;
        }
        PcRel::LdrLiteral => {
            let opc = word >> 30;
            if opc == 3 {
                // PRFM (literal): a hint with no architectural effect.
                e.emit(NOP)?;
            } else {
                // Rt = address, then load through Rt itself: writes only Rt.
                e.out.literal = Some(target);
                let load = encode_ldr_literal(rt, e.pc(), lit)?;
                e.emit(load)?;
                let op = [LDR_W_REG, LDR_X_REG, LDRSW_REG][opc as usize];
                e.emit(op | (rt << 5) | rt)?;
            }
            e.branch(next)?;
        }
        PcRel::LdrLiteralFp => {
            // The destination is a SIMD&FP register: borrow x16 for the address.
            let op = [LDR_S_REG, LDR_D_REG, LDR_Q_REG][(word >> 30) as usize];
            e.out.literal = Some(target);
            e.emit(SPILL_X16)?;
            let load = encode_ldr_literal(SCRATCH, e.pc(), lit)?;
            e.emit(load)?;
            e.emit(op | (SCRATCH << 5) | rt)?;
            e.emit(RELOAD_X16)?;
            e.branch(next)?;
        }
        PcRel::B => e.branch(target)?,
        PcRel::Bl => {
            // x30 = pc + 4: the callee returns to the probed code, never into
            // the trampoline (which may be freed once the probe is gone).
            e.out.literal = Some(next);
            let load = encode_ldr_literal(30, e.pc(), lit)?;
            e.emit(load)?;
            e.branch(target)?;
        }
        PcRel::BCond | PcRel::Cbz | PcRel::Tbz => {
            // Same condition, now skipping one instruction when taken:
            //   <cond> 1f ; b pc + 4 ; 1: b target
            let (lsb, bits) = if kind == PcRel::Tbz { (5, 14) } else { (5, 19) };
            let field = ((1u32 << bits) - 1) << lsb;
            e.emit((word & !field) | (2 << lsb))?;
            e.branch(next)?;
            e.branch(target)?;
        }
    }
    Ok(e.out)
}
