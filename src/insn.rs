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
    /// Short, stable text for listings and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reject::BtiLandingPad => "BTI landing pad",
            Reject::Hint => "hint instruction",
            Reject::Exception => "exception-generating instruction",
            Reject::ExceptionReturn => "exception return",
            Reject::IndirectCall => "indirect call (BLR)",
            Reject::SystemRegisterWrite => "system register write (MSR)",
            Reject::Exclusive => "exclusive or ordered load/store",
            Reject::MemoryCopySet => "memory copy/set (MOPS)",
            Reject::Unallocated => "unallocated or unsupported encoding",
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
