// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_ktest: what a C ABI caller holds and what it is told -- reason
 * strings, handles, probes left behind by an unloading caller, missed counts.
 */
#include "ktest.h"

/* --- reason: optprobe_reason() is a static string (issue 11, item 5) ------- */

int case_reason(void)
{
	static atomic_t hits;
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn, .name = "reason",
		.handler = count_handler, .post_handler = post_handler, .data = &hits,
	};
	struct optprobe_stats stats;
	unsigned long r, probe;
	const char *reason;
	char copy[64];
	int ret;

	optprobe_get_stats(&stats);
	ret = optprobe_register(&d);
	if (ret)
		return ret;
	reason = optprobe_reason(d.probe);
	CHECK(reason, "a post-handler probe has no reason");
	strscpy(copy, reason, sizeof(copy));
	/* The header promises a static string: never memory of the probe. */
	r = (unsigned long)reason;
	probe = (unsigned long)d.probe;
	CHECK(r < probe || r >= probe + stats.probe_bytes,
	      "reason '%s' lives inside the probe (%px, %u bytes): freed by unregister",
	      copy, d.probe, stats.probe_bytes);
	CHECK(!virt_addr_valid(reason), "reason '%s' is heap memory (%px)", copy, reason);
out:
	optprobe_unregister(d.probe);
	if (!ret && reason && strcmp(reason, copy)) {
		pr_err("optprobe_ktest: reason: FAIL: reason changed after unregister\n");
		ret = -EINVAL;
	}
	if (!ret)
		pr_info("optprobe_ktest: reason: '%s' is static\n", copy);
	return ret;
}

/* --- handles: a stale handle never aliases a new probe (issue 11, item 13) -- */

int case_handles(void)
{
	static atomic_t hits;
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn, .name = "handle",
		.handler = count_handler, .data = &hits,
	};
	struct optprobe *old = NULL;
	int ret = 0, i, reused = 0;

	for (i = 0; i < 32; i++) {
		ret = optprobe_register(&d);
		if (ret)
			return ret;
		if (d.probe == old)
			reused++;
		if (old) {
			/* The handle of the probe unregistered last round. */
			CHECK(optprobe_state(old) == -EINVAL,
			      "round %d: a stale handle reads the new probe's state %d", i, optprobe_state(old));
			CHECK(optprobe_disable(old) == -EINVAL, "round %d: a stale handle disabled a probe", i);
			CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED,
			      "round %d: the new probe is in state %d", i, optprobe_state(d.probe));
		}
		old = d.probe;
		optprobe_unregister(d.probe);
	}
	pr_info("optprobe_ktest: handles: 32 rounds, %d handle values reused, every stale one refused\n", reused);
	return 0;
out:
	optprobe_unregister(d.probe);
	return ret;
}

/* --- leak: a caller unloads without unregistering (issue 11, item 13) ------ */

/*
 * Registers a probe whose handler and data live in this module and returns
 * without unregistering; the module's exit does not either. Unloading it must
 * remove the probe (tests/kselftest/49_caller_unload.sh checks the listing).
 */
int case_leak(void)
{
	static atomic_t hits;
	struct optprobe_desc d = {
		.symbol = "optprobe_target_work", .offset = 16, .name = "leaked",
		.handler = count_handler, .data = &hits,
	};
	int ret = optprobe_register(&d);

	if (!ret)
		pr_info("optprobe_ktest: leak: probe left registered, state %d\n", optprobe_state(d.probe));
	return ret;
}

/* --- missed: a recursion counts on every kprobe at the address (item 9) ---- */

static atomic_t missed_kp_runs, missed_opt_runs;
static struct kprobe missed_kp;

static int missed_kp_pre(struct kprobe *p, struct pt_regs *regs)
{
	atomic_inc(&missed_kp_runs);
	return 0;
}

/* Calls the probed function again: that hit finds a kprobe active. */
static void recurse_handler(void *data, struct pt_regs *regs)
{
	atomic_inc(&missed_opt_runs);
	optprobe_target_args(1, 0, 0, 0, 0, 0, 0, 0);
}

int case_missed(void)
{
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn, .name = "recurse", .handler = recurse_handler,
	};
	const int n = 100;
	int ret, i;

	atomic_set(&missed_kp_runs, 0);
	atomic_set(&missed_opt_runs, 0);
	memset(&missed_kp, 0, sizeof(missed_kp));
	missed_kp.addr = (kprobe_opcode_t *)optprobe_target_args_insn;
	missed_kp.pre_handler = missed_kp_pre;
	ret = register_kprobe(&missed_kp);
	if (ret)
		return ret;
	ret = optprobe_register(&d);
	if (ret) {
		unregister_kprobe(&missed_kp);
		return ret;
	}
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	for (i = 0; i < n; i++)
		optprobe_target_args(i, 0, 0, 0, 0, 0, 0, 0);
	CHECK(atomic_read(&missed_opt_runs) == n && atomic_read(&missed_kp_runs) == n,
	      "handler runs: optprobe %d, kprobe %d, want %d each",
	      atomic_read(&missed_opt_runs), atomic_read(&missed_kp_runs), n);
	CHECK(optprobe_missed(d.probe) == n, "optprobe missed %lu, want %d", optprobe_missed(d.probe), n);
	CHECK(missed_kp.nmissed == n, "the other kprobe at the address missed %lu, want %d (as kprobes counts a recursion)",
	      missed_kp.nmissed, n);
	pr_info("optprobe_ktest: missed: %d recursions counted on both kprobes at the address\n", n);
out:
	optprobe_unregister(d.probe);
	unregister_kprobe(&missed_kp);
	return ret;
}

/* --- context: what a handler on the optimized path runs inside ---------------- */

/*
 * The trampoline's fast path (src/hit.rs optprobe_dispatch) does in asm what
 * the BRK path does for a handler: current_kprobe = the probe's kprobe,
 * kprobe_ctlblk.kprobe_status = KPROBE_HIT_ACTIVE, preemption disabled; and
 * a hit while a kprobe is active is missed, not run. Neither per-CPU
 * variable is exported: they are found as optprobe finds its symbols.
 */
static struct kprobe * __percpu *ctx_current_kprobe;
static struct kprobe_ctlblk __percpu *ctx_kcb;
static unsigned long ctx_site;
static atomic_t ctx_runs, ctx_bad;
static int ctx_preempt_seen;
static struct kprobe *ctx_seen_kp;
static unsigned int ctx_seen_status;
static char ctx_caller[KSYM_SYMBOL_LEN];
static bool ctx_want_resched;

/* A C function's first body instruction: after BTI/PAC pads, ftrace nops
 * and the "mov x9, x30" of its ftrace call site. */
static u32 *body_start(void *func)
{
	u32 *p = func;
	int i;

	for (i = 0; i < 8; i++, p++) {
		u32 w = le32_to_cpu(*p);

		if (w != 0xd503245f && w != 0xd503201f && w != 0xd503233f && w != 0xd503237f && w != 0xaa1e03e9)
			return p;
	}
	return NULL;
}

static void context_handler(void *data, struct pt_regs *regs)
{
	struct kprobe *kp = *this_cpu_ptr(ctx_current_kprobe);

	if (atomic_inc_return(&ctx_runs) == 1)
		sprint_symbol(ctx_caller, (unsigned long)__builtin_return_address(0));
	ctx_seen_kp = kp;
	ctx_seen_status = this_cpu_ptr(ctx_kcb)->kprobe_status;
	ctx_preempt_seen = preempt_count();
	if (!kp || (unsigned long)kp->addr != ctx_site || ctx_seen_status != KPROBE_HIT_ACTIVE ||
	    (IS_ENABLED(CONFIG_PREEMPT_COUNT) && !(preempt_count() & PREEMPT_MASK)))
		atomic_inc(&ctx_bad);
	/* A hit on another lone optimized probe in here: missed, not run. */
	optprobe_target_nested(1);
	/* A reschedule falls due while the hit has preemption disabled: the
	 * preempt_enable() after the handler must act on it. */
	if (ctx_want_resched) {
		set_tsk_need_resched(current);
		set_preempt_need_resched();
	}
}

int case_context(void)
{
	struct optprobe_desc outer = {
		.addr = optprobe_target_args_insn, .name = "ctx_outer", .handler = context_handler,
	};
	struct optprobe_desc inner = { .name = "ctx_inner" };
	atomic_t inner_runs = ATOMIC_INIT(0);
	struct kprobe *leftover;
	const int n = 100;
	int ret, i, before;

	ctx_current_kprobe = (void __percpu *)ktest_lookup("current_kprobe");
	ctx_kcb = (void __percpu *)ktest_lookup("kprobe_ctlblk");
	if (!ctx_current_kprobe || !ctx_kcb)
		return -ENOENT;
	ctx_site = (unsigned long)optprobe_target_args_insn;
	ctx_want_resched = false;
	ctx_caller[0] = 0;
	atomic_set(&ctx_runs, 0);
	atomic_set(&ctx_bad, 0);
	inner.addr = body_start(optprobe_target_nested);
	if (!inner.addr)
		return -ENOENT;
	inner.handler = count_handler;
	inner.data = &inner_runs;
	ret = optprobe_register(&inner);
	if (ret)
		return ret;
	ret = optprobe_register(&outer);
	if (ret) {
		optprobe_unregister(inner.probe);
		return ret;
	}
	CHECK(optprobe_state(outer.probe) == OPTPROBE_STATE_OPTIMIZED, "outer not optimized: %s", reason_of(outer.probe));
	CHECK(optprobe_state(inner.probe) == OPTPROBE_STATE_OPTIMIZED, "inner not optimized: %s", reason_of(inner.probe));
	/* The inner probe alone first: its hits run. */
	optprobe_target_nested(1);
	CHECK(atomic_read(&inner_runs) == 1, "inner handler ran %d times on its own, want 1", atomic_read(&inner_runs));
	before = preempt_count();
	for (i = 0; i < n; i++) {
		if (i & 1) {
			/* A stale status on this CPU (as a BRK hit leaves it) that
			 * the hit must overwrite: pinned here, so that the hit runs
			 * on this CPU. */
			preempt_disable();
			this_cpu_ptr(ctx_kcb)->kprobe_status = KPROBE_HIT_SSDONE;
			optprobe_target_args(i, 0, 0, 0, 0, 0, 0, 0);
			preempt_enable();
		} else {
			/* Preemptible here: the hit itself must disable it. */
			optprobe_target_args(i, 0, 0, 0, 0, 0, 0, 0);
		}
	}
	CHECK(preempt_count() == before, "preempt_count %#x after the hits, %#x before", preempt_count(), before);
	leftover = *per_cpu_ptr(ctx_current_kprobe, get_cpu());
	put_cpu();
	CHECK(!leftover, "current_kprobe left set after the hits: %px", leftover);
	CHECK(atomic_read(&ctx_runs) == n, "outer handler ran %d times, want %d", atomic_read(&ctx_runs), n);
	CHECK(atomic_read(&ctx_bad) == 0,
	      "%d of %d runs saw the wrong context (last: current_kprobe %px addr %px, want addr %px; status %u, want %u; preempt_count %#x)",
	      atomic_read(&ctx_bad), n, ctx_seen_kp, ctx_seen_kp ? ctx_seen_kp->addr : NULL, (void *)ctx_site,
	      ctx_seen_status, KPROBE_HIT_ACTIVE, ctx_preempt_seen);
	CHECK(atomic_read(&inner_runs) == 1, "inner handler ran %d times inside the outer one, want none",
	      atomic_read(&inner_runs) - 1);
	CHECK(optprobe_missed(inner.probe) == n, "inner probe missed %lu, want %d", optprobe_missed(inner.probe), n);
	CHECK(optprobe_missed(outer.probe) == 0, "outer probe missed %lu, want 0", optprobe_missed(outer.probe));
	/* A lone probe's handler is called by the trampoline's fast path
	 * (under kCFI every hit takes the general path, optprobe_callback). */
	if (!IS_ENABLED(CONFIG_CFI_CLANG) && !IS_ENABLED(CONFIG_CFI))
		CHECK(!strncmp(ctx_caller, "optprobe_dispatch+", 18) || !strncmp(ctx_caller, "optprobe_dispatch_el2+", 22),
		      "handler called from %s, want optprobe_dispatch (optprobe_dispatch_el2 at EL2)", ctx_caller);
	if (IS_ENABLED(CONFIG_PREEMPTION)) {
		ctx_want_resched = true;
		optprobe_target_args(1, 0, 0, 0, 0, 0, 0, 0);
		ctx_want_resched = false;
		CHECK(!test_thread_flag(TIF_NEED_RESCHED), "a reschedule due at the end of the hit was left pending");
	}
	pr_info("optprobe_ktest: context: %d handler runs from %s with current_kprobe, KPROBE_HIT_ACTIVE and preemption off; %d nested hits missed; a reschedule due at the end taken\n",
		n, ctx_caller, n);
out:
	optprobe_unregister(outer.probe);
	optprobe_unregister(inner.probe);
	return ret;
}

/* --- pages: trampoline pages mapped as kprobes maps its own (item 12) ------ */

/* The trampoline of an optimized probe: the target of the "b" at its site. */
static unsigned long tramp_of(u32 *site)
{
	u32 insn = le32_to_cpu(READ_ONCE(*site));
	s64 off;

	if ((insn & 0xfc000000) != 0x14000000)
		return 0;
	off = sign_extend64((insn & 0x03ffffff) << 2, 27);
	return (unsigned long)site + off;
}

/* init_mm is not exported: find it the way optprobe finds its symbols. */
static struct mm_struct *find_init_mm(void)
{
	return ktest_lookup("init_mm");
}

static pte_t *kernel_pte(unsigned long addr)
{
	struct mm_struct *mm = find_init_mm();
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;
	pmd_t *pmd;

	if (!mm)
		return NULL;
	pgd = pgd_offset(mm, addr);
	if (pgd_none(READ_ONCE(*pgd)))
		return NULL;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(READ_ONCE(*p4d)))
		return NULL;
	pud = pud_offset(p4d, addr);
	if (pud_none(READ_ONCE(*pud)) || pud_leaf(READ_ONCE(*pud)))
		return NULL;
	pmd = pmd_offset(pud, addr);
	if (pmd_none(READ_ONCE(*pmd)) || pmd_leaf(READ_ONCE(*pmd)))
		return NULL;
	return pte_offset_kernel(pmd, addr);
}

/* Write one byte, or -EFAULT if the mapping refuses it (copy_to_kernel_nofault
 * is not exported). */
static int write_byte_nofault(void *dst, u8 v)
{
	pagefault_disable();
	__put_kernel_nofault(dst, &v, u8, fault);
	pagefault_enable();
	return 0;
fault:
	pagefault_enable();
	return -EFAULT;
}

int case_pages(void)
{
	static atomic_t hits;
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn, .name = "pages",
		.handler = count_handler, .data = &hits,
	};
	unsigned long tramp;
	void *alias;
	pte_t *pte;
	u8 byte;
	int ret;

	ret = optprobe_register(&d);
	if (ret)
		return ret;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	tramp = tramp_of(optprobe_target_args_insn);
	CHECK(tramp, "no trampoline branch at the site");
	/* The linear-map alias of the page must be read-only, as for kprobes' own
	 * instruction pages (set_memory_rox under rodata=full). Writing the
	 * byte already there changes nothing if the write goes through. */
	alias = page_address(vmalloc_to_page((void *)tramp)) + offset_in_page(tramp);
	byte = READ_ONCE(*(u8 *)alias);
	if (IS_ENABLED(CONFIG_RODATA_FULL_DEFAULT_ENABLED))
		CHECK(write_byte_nofault(alias, byte) == -EFAULT,
		      "the trampoline page's linear alias %px is writable", alias);
	/* Executable, read-only, and BTI-guarded where the kernel uses BTI. */
	pte = kernel_pte(tramp);
	CHECK(pte, "no page-table entry for %lx", tramp);
	CHECK(!(pte_val(*pte) & PTE_PXN) && (pte_val(*pte) & PTE_RDONLY), "pte %llx: want executable, read-only",
	      (u64)pte_val(*pte));
	CHECK((pte_val(*pte) & PTE_MAYBE_GP) == PTE_MAYBE_GP, "pte %llx: no BTI guard (GP) bit",
	      (u64)pte_val(*pte));
	optprobe_target_args(1, 2, 3, 4, 5, 6, 7, 8);
	CHECK(atomic_read(&hits) == 1, "%d hits", atomic_read(&hits));
	pr_info("optprobe_ktest: pages: trampoline %lx: pte %llx, linear alias %s, BTI guard %s\n", tramp,
		(u64)pte_val(*pte), IS_ENABLED(CONFIG_RODATA_FULL_DEFAULT_ENABLED) ? "read-only" : "(rodata=full not the default)",
		PTE_MAYBE_GP ? "set" : "(BTI not in use)");
out:
	optprobe_unregister(d.probe);
	return ret;
}
