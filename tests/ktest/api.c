// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_ktest: the C ABI cases -- hits, flags, fallback, backtrace, scale, coexist.
 */
#include "ktest.h"

/* --- hits: handler runs once per call and sees the right registers ------- */

struct seen {
	atomic_t count;
	u64 x[8], sp, pc, lr, pstate;
};

static void record_handler(void *data, struct pt_regs *regs)
{
	struct seen *s = data;
	int i;

	for (i = 0; i < 8; i++)
		s->x[i] = regs->regs[i];
	s->sp = regs->sp;
	s->pc = regs->pc;
	s->lr = regs->regs[30];
	s->pstate = regs->pstate;
	atomic_inc(&s->count);
}

int case_hits(void)
{
	static struct seen s;
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn,
		.name = "hits",
		.handler = record_handler,
		.data = &s,
	};
	u64 a[8], got;
	int ret, i, n;

	memset(&s, 0, sizeof(s));
	ret = optprobe_register(&d);
	if (ret) {
		pr_err("optprobe_ktest: hits: FAIL: register %d\n", ret);
		return ret;
	}
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED,
	      "not optimized: %s", reason_of(d.probe));
	for (n = 1; n <= 10; n++) {
		for (i = 0; i < 8; i++)
			a[i] = 0x1111111100000000ull * n + (i + 1) * 0x101;
		got = optprobe_target_call_args(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
		CHECK(got == a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7],
		      "result changed: %llx", got);
		CHECK(atomic_read(&s.count) == n, "count %d after %d calls", atomic_read(&s.count), n);
		for (i = 0; i < 8; i++)
			CHECK(s.x[i] == a[i], "x%d = %llx, want %llx", i, s.x[i], a[i]);
		CHECK(s.sp == optprobe_target_caller_sp, "sp %llx, want %llx", s.sp, optprobe_target_caller_sp);
		CHECK(s.pc == (u64)optprobe_target_args_insn, "pc %llx, want %px", s.pc, optprobe_target_args_insn);
		CHECK(s.lr == (u64)optprobe_target_call_args_ret, "lr %llx, want %px", s.lr, optprobe_target_call_args_ret);
		CHECK((s.pstate & PSR_MODE_MASK) == (read_sysreg(CurrentEL) | PSR_MODE_THREAD_BIT),
		      "pstate mode %llx, want the kernel's exception level %llx with SP_ELx",
		      s.pstate & PSR_MODE_MASK, read_sysreg(CurrentEL) | PSR_MODE_THREAD_BIT);
		CHECK(!(s.pstate & PSR_I_BIT), "pstate says IRQs masked: %llx", s.pstate);
	}
	pr_info("optprobe_ktest: hits: 10 calls, 10 hits, registers as expected\n");
out:
	optprobe_unregister(d.probe);
	if (!ret) {
		optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
		if (atomic_read(&s.count) != 10) {
			pr_err("optprobe_ktest: hits: FAIL: handler ran after unregister\n");
			ret = -EINVAL;
		}
	}
	return ret;
}

/* --- flags: NZCV reaches the handler and survives the trampoline --------- */

static void clobber_flags_handler(void *data, struct pt_regs *regs)
{
	u64 *nzcv = data;

	*nzcv = regs->pstate & 0xf0000000;
	/* Leave different flags behind; the trampoline must restore them. */
	asm volatile("cmn xzr, xzr" ::: "cc");
}

int case_flags(void)
{
	static const u64 pairs[][2] = {
		{ 1, 1 }, { 1, 2 }, { 2, 1 }, { 0, 1ull << 63 }, { 1ull << 63, 1 }, { 0, 0 },
	};
	u64 handler_nzcv = ~0ull, want, got;
	struct optprobe_desc d = {
		.addr = optprobe_target_flags_insn,
		.name = "flags",
		.handler = clobber_flags_handler,
		.data = &handler_nzcv,
	};
	int ret, i;

	ret = optprobe_register(&d);
	if (ret)
		return ret;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	for (i = 0; i < ARRAY_SIZE(pairs); i++) {
		optprobe_unregister(d.probe);
		d.probe = NULL;
		want = optprobe_target_flags(pairs[i][0], pairs[i][1]);
		ret = optprobe_register(&d);
		if (ret)
			return ret;
		got = optprobe_target_flags(pairs[i][0], pairs[i][1]);
		CHECK(got == want, "cmp %llx, %llx: NZCV %llx after probe, %llx without", pairs[i][0], pairs[i][1], got, want);
		CHECK(handler_nzcv == want, "handler saw NZCV %llx, want %llx", handler_nzcv, want);
	}
	pr_info("optprobe_ktest: flags: %zu comparisons, NZCV exact in handler and after\n", ARRAY_SIZE(pairs));
out:
	if (d.probe)
		optprobe_unregister(d.probe);
	return ret;
}

/* --- fallback: each ineligible probe says why and still hits ------------- */
int case_fallback(void)
{
	static atomic_t hits[3];
	struct optprobe_desc d[3] = {
		{ .addr = optprobe_target_args, .name = "bti", .handler = count_handler, .data = &hits[0] },
		{ .addr = optprobe_target_args_insn, .name = "post", .handler = count_handler,
		  .post_handler = post_handler, .data = &hits[1] },
		{ .addr = optprobe_target_blr_insn, .name = "blr", .handler = count_handler, .data = &hits[2] },
	};
	static const char *const want[3] = { "BTI landing pad (notrace: no ftrace call site)", "post-handler", "indirect call (BLR)" };
	int ret = 0, i, registered = 0;

	/*
	 * The asm target's sym+0 is "bti c" only in a kernel built for BTI
	 * (and a landing pad only where the CPU enforces it); elsewhere (a
	 * GCC-built kernel, arm64.nobti) it is an ordinary ADD, optimized.
	 */
	bool pad = system_supports_bti_kernel();

	for (i = 0; i < 3; i++) {
		atomic_set(&hits[i], 0);
		ret = optprobe_register(&d[i]);
		CHECK(!ret, "register %s: %d", d[i].name, ret);
		registered++;
		if (i == 0 && !pad) {
			CHECK(optprobe_state(d[i].probe) == OPTPROBE_STATE_OPTIMIZED,
			      "%s (no landing pad): not optimized: %s", d[i].name, reason_of(d[i].probe));
			continue;
		}
		CHECK(optprobe_state(d[i].probe) == OPTPROBE_STATE_KPROBE, "%s optimized", d[i].name);
		CHECK(!strcmp(reason_of(d[i].probe), want[i]), "%s: reason '%s', want '%s'",
		      d[i].name, reason_of(d[i].probe), want[i]);
	}
	optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
	CHECK(optprobe_target_blr(41) == 42, "blr result changed");
	for (i = 0; i < 3; i++)
		CHECK(atomic_read(&hits[i]) == 1, "%s: %d hits", d[i].name, atomic_read(&hits[i]));
	/*
	 * The 8 bytes before a traceable function hold ftrace's ops pointer
	 * (DYNAMIC_FTRACE_WITH_CALL_OPS): data, refused outright, neither
	 * branch nor BRK. kallsyms counts them to the previous function, so
	 * kprobes accepts them (kernel_read: exported, traceable).
	 */
	for (i = 1; i <= 2; i++) {
		struct optprobe_desc lit = {
			.addr = (u32 *)kernel_read - i, .name = "literal",
			.handler = count_handler, .data = &hits[0],
		};
		int r = optprobe_register(&lit);

		if (!r)
			optprobe_unregister(lit.probe);
		CHECK(r == -EINVAL, "probe %d bytes before kernel_read: %d, want -EINVAL", 4 * i, r);
	}
	pr_info("optprobe_ktest: fallback: %s, post-handler, BLR stay kprobes with reasons, all hit; the ftrace ops literal is refused\n",
		pad ? "BTI" : "(no landing pad: entry optimized)");
out:
	for (i = 0; i < registered; i++)
		optprobe_unregister(d[i].probe);
	return ret;
}

/* --- backtrace: a handler's stack trace shows the function and caller ---- */

struct trace {
	unsigned long entries[24];
	unsigned int nr;
};

static void trace_handler(void *data, struct pt_regs *regs)
{
	struct trace *t = data;

	t->nr = stack_trace_save(t->entries, ARRAY_SIZE(t->entries), 0);
}

/*
 * Index of the first entry inside `func`, or -1. The target's global inner
 * labels (func_insn, func_ret, ...) symbolize in place of func itself.
 */
static int find_frame(struct trace *t, const char *func)
{
	char sym[KSYM_SYMBOL_LEN];
	size_t len = strlen(func);
	int i;

	for (i = 0; i < t->nr; i++) {
		sprint_symbol(sym, t->entries[i]);
		if (!strncmp(sym, func, len) && (sym[len] == '+' ||
		    (sym[len] == '_' && strncmp(func, "optprobe_target_", 16) == 0)))
			return i;
	}
	return -1;
}

static void dump_trace(struct trace *t)
{
	int i;

	for (i = 0; i < t->nr; i++)
		pr_info("optprobe_ktest:   #%d %pS\n", i, (void *)t->entries[i]);
}

static noinline u64 call_through_call_args(void)
{
	return optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
}

static noinline u64 call_epilogue(void)
{
	return optprobe_target_epilogue(1, 1);
}

static noinline u64 call_shrinkwrap_early(void)
{
	return optprobe_target_shrinkwrap(1, 0);
}

static noinline int backtrace_one(void *addr, u64 (*call)(void), const char *inner, const char *outer)
{
	static struct trace t;
	struct optprobe_desc d = { .addr = addr, .name = "bt", .handler = trace_handler, .data = &t };
	int ret, a, b;

	memset(&t, 0, sizeof(t));
	ret = optprobe_register(&d);
	if (ret)
		return ret;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	call();
	CHECK(t.nr > 0, "the handler did not run");
	a = find_frame(&t, inner);
	b = find_frame(&t, outer);
	if (a < 0 || b < 0 || b <= a) {
		dump_trace(&t);
		FAIL("trace lacks %s (%d) then %s (%d)", inner, a, outer, b);
	}
	pr_info("optprobe_ktest: backtrace: %s at #%d, %s at #%d\n", inner, a, outer, b);
out:
	optprobe_unregister(d.probe);
	return ret;
}

int case_backtrace(void)
{
	int ret;

	/* Before the probed function's frame record exists (leaf, entry). */
	ret = backtrace_one(optprobe_target_args_insn, call_through_call_args, "optprobe_target_args",
			    "optprobe_target_call_args");
	if (ret)
		return ret;
	/* After the prologue: the function's own record leads to its caller. */
	ret = backtrace_one(optprobe_target_call_args_body, call_through_call_args, "optprobe_target_call_args",
			    "call_through_call_args");
	if (ret)
		return ret;
	/* After the epilogue (issue 11, item 11): x29 is the caller's again. */
	ret = backtrace_one((u8 *)optprobe_target_epilogue + optprobe_target_epilogue_off, call_epilogue,
			    "optprobe_target_epilogue",
			    "call_epilogue");
	if (ret)
		return ret;
	/* A shrink-wrapped early exit, laid out after the frame setup. */
	return backtrace_one((u8 *)optprobe_target_shrinkwrap + optprobe_target_shrinkwrap_off, call_shrinkwrap_early,
			     "optprobe_target_shrinkwrap",
			     "call_shrinkwrap_early");
}

/* --- scale: scale_probes (default 1000) probes in one batch -------------- */

int case_scale(void)
{
	const unsigned int nprobes = clamp_t(unsigned int, scale_probes, 1, OPTPROBE_TARGET_MANY);
	static atomic_t hits;
	struct optprobe_desc *d;
	struct optprobe **handles;
	unsigned long sm_before, sm_after;
	int ret, i, optimized = 0;
	u64 result;

	d = kvcalloc(nprobes, sizeof(*d), GFP_KERNEL);
	handles = kvcalloc(nprobes, sizeof(*handles), GFP_KERNEL);
	if (!d || !handles) {
		kvfree(d);
		kvfree(handles);
		return -ENOMEM;
	}
	atomic_set(&hits, 0);
	for (i = 0; i < nprobes; i++) {
		d[i].addr = &optprobe_target_many_insns[i];
		d[i].name = "scale";
		d[i].handler = count_handler;
		d[i].data = &hits;
	}
	sm_before = optprobe_stop_machine_count();
	ret = optprobe_register_batch(d, nprobes);
	sm_after = optprobe_stop_machine_count();
	if (ret) {
		pr_err("optprobe_ktest: scale: FAIL: register_batch %d\n", ret);
		goto free;
	}
	for (i = 0; i < nprobes; i++) {
		handles[i] = d[i].probe;
		if (optprobe_state(d[i].probe) == OPTPROBE_STATE_OPTIMIZED)
			optimized++;
		else
			CHECK(optprobe_reason(d[i].probe), "probe %d: kprobe without a reason", i);
	}
	result = optprobe_target_many(5);
	CHECK(result == 5 + OPTPROBE_TARGET_MANY, "result %llu", result);
	CHECK(atomic_read(&hits) == nprobes, "%d hits, want %d", atomic_read(&hits), nprobes);
	CHECK(optimized == nprobes, "only %d of %d optimized (first reason: %s)",
	      optimized, nprobes, reason_of(d[0].probe));
	CHECK(sm_after - sm_before <= DIV_ROUND_UP(nprobes, 256), "%lu stop_machine batches", sm_after - sm_before);
	pr_info("optprobe_ktest: scale: %d probes, %d optimized, %lu stop_machine batches, %d hits\n",
		nprobes, optimized, sm_after - sm_before, atomic_read(&hits));
out:
	sm_before = optprobe_stop_machine_count();
	optprobe_unregister_batch(handles, nprobes);
	pr_info("optprobe_ktest: scale: unregistered with %lu stop_machine batches\n",
		optprobe_stop_machine_count() - sm_before);
free:
	kvfree(d);
	kvfree(handles);
	return ret;
}

/* --- races: attach/detach while 4 CPUs call the target -------------------- */
/* --- coexist: a kernel kprobe and an optprobe on the same address --------- */

static atomic_t kp_hits;

static int kp_pre(struct kprobe *p, struct pt_regs *regs)
{
	atomic_inc(&kp_hits);
	return 0;
}

static int coexist_order(bool kprobe_first)
{
	static atomic_t op_hits;
	struct kprobe kp = { .addr = (kprobe_opcode_t *)optprobe_target_args_insn, .pre_handler = kp_pre };
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn, .name = "coexist",
		.handler = count_handler, .data = &op_hits,
	};
	int ret = 0, i, have_kp = 0, have_op = 0;

	atomic_set(&kp_hits, 0);
	atomic_set(&op_hits, 0);
	for (i = 0; i < 2; i++) {
		if (kprobe_first == (i == 0)) {
			ret = register_kprobe(&kp);
			CHECK(!ret, "register_kprobe %d", ret);
			have_kp = 1;
		} else {
			ret = optprobe_register(&d);
			CHECK(!ret, "optprobe_register %d", ret);
			have_op = 1;
		}
	}
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	for (i = 0; i < 5; i++)
		optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
	CHECK(atomic_read(&kp_hits) == 5 && atomic_read(&op_hits) == 5,
	      "kprobe %d hits, optprobe %d hits, want 5 and 5", atomic_read(&kp_hits), atomic_read(&op_hits));
	/* Remove in the other order; the remaining one keeps working. */
	if (kprobe_first) {
		unregister_kprobe(&kp);
		have_kp = 0;
		optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
		CHECK(atomic_read(&op_hits) == 6, "optprobe alone: %d hits", atomic_read(&op_hits));
	} else {
		optprobe_unregister(d.probe);
		have_op = 0;
		optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
		CHECK(atomic_read(&kp_hits) == 6, "kprobe alone: %d hits", atomic_read(&kp_hits));
	}
	pr_info("optprobe_ktest: coexist (%s first): both handlers ran\n", kprobe_first ? "kprobe" : "optprobe");
out:
	if (have_kp)
		unregister_kprobe(&kp);
	if (have_op)
		optprobe_unregister(d.probe);
	return ret;
}

int case_coexist(void)
{
	int ret = coexist_order(true);

	return ret ? ret : coexist_order(false);
}


/* --- regs: pt_regs fields beyond the GPRs are defined, not stack garbage ---- */

static struct pt_regs regs_seen;

static void copy_regs_handler(void *data, struct pt_regs *regs)
{
	regs_seen = *regs;
}

/* Leave a pattern where the trampoline will build its pt_regs. */
static noinline void poison_stack(void)
{
	u8 buf[1024];

	memset(buf, 0x5a, sizeof(buf));
	OPTIMIZER_HIDE_VAR(buf[0]);
	barrier_data(buf);
}

static u64 live_pan(void)
{
	u64 pan = 0;

	if (cpus_have_final_cap(ARM64_HAS_PAN))
		asm volatile("mrs %0, S3_0_C4_C2_3" : "=r"(pan));
	return pan;
}

int case_regs(void)
{
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn, .name = "regs", .handler = copy_regs_handler,
	};
	u64 want_pmr = GIC_PRIO_IRQON, pan;
	int ret;

	ret = optprobe_register(&d);
	if (ret)
		return ret;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	memset(&regs_seen, 0xa5, sizeof(regs_seen));
	preempt_disable();
	if (system_uses_irq_prio_masking())
		want_pmr = read_sysreg_s(SYS_ICC_PMR_EL1);
	pan = live_pan();
	poison_stack();
	optprobe_target_args(1, 2, 3, 4, 5, 6, 7, 8);
	preempt_enable();
	CHECK(regs_seen.sdei_ttbr1 == 0, "sdei_ttbr1 %llx", regs_seen.sdei_ttbr1);
	/* Not a syscall frame; 6.13+ packs syscallno and pmr into one doubleword. */
	CHECK(regs_seen.orig_x0 == 0, "orig_x0 %llx", regs_seen.orig_x0);
	CHECK(regs_seen.syscallno == NO_SYSCALL && !in_syscall(&regs_seen), "syscallno %d", regs_seen.syscallno);
#ifdef OPTPROBE_PT_REGS_PMR_SAVE
	CHECK(regs_seen.unused2 == 0, "unused2 %x", regs_seen.unused2);
#endif
	CHECK(PT_REGS_PMR(&regs_seen) == want_pmr, "pmr %llx, want %llx", (u64)PT_REGS_PMR(&regs_seen), want_pmr);
	/* After the frame record: 6.12's lockdep_hardirqs and exit_rcu, 6.13+'s frame type. */
	CHECK(!memchr_inv((u8 *)&regs_seen.stackframe + 16, 0,
			  sizeof(regs_seen) - offsetof(struct pt_regs, stackframe) - 16),
	      "pt_regs after the frame record is not zero");
	CHECK(interrupts_enabled(&regs_seen), "interrupts_enabled() is false in a context with interrupts on");
	CHECK((regs_seen.pstate & PSR_PAN_BIT) == (pan & PSR_PAN_BIT), "pstate %llx: PAN %s, the CPU's is %s",
	      regs_seen.pstate, regs_seen.pstate & PSR_PAN_BIT ? "set" : "clear", pan & PSR_PAN_BIT ? "set" : "clear");
	/* Documented as zero: everything but NZCV, DAIF, PAN, M[3:0]. */
	CHECK(!(regs_seen.pstate & ~(u64)(0xf0000000 | PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT |
					  PSR_PAN_BIT | 0xf)),
	      "pstate %llx has undocumented bits", regs_seen.pstate);
	pr_info("optprobe_ktest: regs: pstate %llx (PAN %s), pmr %llx, the rest 0\n", regs_seen.pstate,
		pan ? "on" : "off", (u64)PT_REGS_PMR(&regs_seen));
out:
	optprobe_unregister(d.probe);
	return ret;
}

/* --- late_post: a post-handler joining an optimized address (item 7) ------- */

static atomic_t late_pre_runs, late_post_runs;

static int late_kp_pre(struct kprobe *p, struct pt_regs *regs)
{
	atomic_inc(&late_pre_runs);
	return 0;
}

static void late_kp_post(struct kprobe *p, struct pt_regs *regs, unsigned long flags)
{
	atomic_inc(&late_post_runs);
}

int case_late_post(void)
{
	static atomic_t hits;
	static struct kprobe kp;
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn, .name = "late_post", .handler = count_handler, .data = &hits,
	};
	const int n = 50;
	int ret, i, waited = 0;
	unsigned long missed;

	atomic_set(&hits, 0);
	atomic_set(&late_pre_runs, 0);
	atomic_set(&late_post_runs, 0);
	ret = optprobe_register(&d);
	if (ret)
		return ret;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	memset(&kp, 0, sizeof(kp));
	kp.addr = (kprobe_opcode_t *)optprobe_target_args_insn;
	kp.pre_handler = late_kp_pre;
	kp.post_handler = late_kp_post;
	ret = register_kprobe(&kp);
	if (ret) {
		optprobe_unregister(d.probe);
		return ret;
	}
	for (i = 0; i < n; i++)
		optprobe_target_args(i, 0, 0, 0, 0, 0, 0, 0);
	/* The optimized path cannot run a post-handler: it must fall back. */
	while (optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED && waited < 2000) {
		msleep(10);
		waited += 10;
	}
	for (i = 0; i < n; i++)
		optprobe_target_args(i, 0, 0, 0, 0, 0, 0, 0);
	missed = kp.nmissed;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_KPROBE, "still optimized after %d ms", waited);
	CHECK(strstr(reason_of(d.probe), "post-handler"), "reason '%s'", reason_of(d.probe));
	CHECK(atomic_read(&late_pre_runs) == 2 * n && atomic_read(&hits) == 2 * n,
	      "pre-handler runs %d, optprobe hits %d, want %d each", atomic_read(&late_pre_runs),
	      atomic_read(&hits), 2 * n);
	CHECK(atomic_read(&late_post_runs) >= n, "post-handler ran %d times, want all %d after the fall back",
	      atomic_read(&late_post_runs), n);
	CHECK(atomic_read(&late_post_runs) + missed == 2 * n,
	      "post-handler ran %d times and missed %lu: %d hits are unaccounted for",
	      atomic_read(&late_post_runs), missed, 2 * n - atomic_read(&late_post_runs) - (int)missed);
	pr_info("optprobe_ktest: late_post: fell back to BRK in %d ms; post-handler %d runs + %lu missed = %d hits\n",
		waited, atomic_read(&late_post_runs), missed, 2 * n);
out:
	unregister_kprobe(&kp);
	optprobe_unregister(d.probe);
	return ret;
}
