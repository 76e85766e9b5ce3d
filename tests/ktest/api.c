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
		CHECK((s.pstate & PSR_MODE_MASK) == PSR_MODE_EL1h, "pstate mode %llx", s.pstate & PSR_MODE_MASK);
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
	static const char *const want[3] = { "BTI landing pad", "post-handler", "indirect call (BLR)" };
	int ret = 0, i, registered = 0;

	for (i = 0; i < 3; i++) {
		atomic_set(&hits[i], 0);
		ret = optprobe_register(&d[i]);
		CHECK(!ret, "register %s: %d", d[i].name, ret);
		registered++;
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
	pr_info("optprobe_ktest: fallback: BTI, post-handler, BLR stay kprobes with reasons, all hit; the ftrace ops literal is refused\n");
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

static noinline int backtrace_one(void *addr, const char *inner, const char *outer)
{
	static struct trace t;
	struct optprobe_desc d = { .addr = addr, .name = "bt", .handler = trace_handler, .data = &t };
	int ret, a, b;

	memset(&t, 0, sizeof(t));
	ret = optprobe_register(&d);
	if (ret)
		return ret;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
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
	ret = backtrace_one(optprobe_target_args_insn, "optprobe_target_args", "optprobe_target_call_args");
	if (ret)
		return ret;
	/* After the prologue: the function's own record leads to its caller. */
	return backtrace_one(optprobe_target_call_args_body, "optprobe_target_call_args", "backtrace_one");
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
