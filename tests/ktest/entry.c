// SPDX-License-Identifier: GPL-2.0
/*
 * entry_tokens: exactness of function-entry delivery through ftrace
 * (src/entry.rs) while it flips with BRK delivery.
 *
 * A plain kprobe (foreign to optprobe) sits at optprobe_target_token+0.
 * Kthreads, more than there are CPUs, and a per-CPU hrtimer storm call the
 * target, each call with a token of its own; the handler sets the token's
 * bit, counting a bit already set as a duplicate. Phase 1 runs with BRK
 * delivery only (the reference); phase 2 runs while optprobe moves the
 * address between BRK and ftrace `flips` times (test hook
 * optprobe_test_request, as `o`/`-o` do). Each phase passes when every
 * token issued was delivered exactly once: hits == tokens, no duplicate,
 * no gap, and the kprobe's nmissed equals the reference's.
 * The kselftest (63_entry_tokens) attaches and detaches function_graph
 * meanwhile.
 */
#include "ktest.h"
#include <linux/hrtimer.h>
#include <linux/bitmap.h>

unsigned int flips = 1000;
module_param(flips, uint, 0);
MODULE_PARM_DESC(flips, "entry_tokens: BRK <-> ftrace flips (default 1000)");

unsigned int storm_us = 100;
module_param(storm_us, uint, 0);
MODULE_PARM_DESC(storm_us, "entry_tokens: period of the per-CPU hrtimer storm in us (default 100)");

#define TOKENS (1UL << 24)
#define STORM_NS ((u64)max(storm_us, 1U) * NSEC_PER_USEC)
#define WORKERS 8

static unsigned long *tok_map;
/* Which tokens a hardirq (the hrtimer storm) issued: a failure says whom it lost. */
static unsigned long *tok_irq_map;
static atomic64_t tok_next;
static atomic_t tok_dups, tok_hits, tok_stop;
static DEFINE_PER_CPU(struct hrtimer, tok_timer);

/* Read-only: tokens issued so far (63_entry_tokens logs it at each tracer switch). */
static int tok_issued_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(&tok_next));
}
static const struct kernel_param_ops tok_issued_ops = { .get = tok_issued_get };
module_param_cb(tokens_issued, &tok_issued_ops, NULL, 0444);
MODULE_PARM_DESC(tokens_issued, "entry_tokens: tokens issued so far (read-only)");

static int tok_pre(struct kprobe *kp, struct pt_regs *regs)
{
	u64 t = regs->regs[0];

	atomic_inc(&tok_hits);
	if (t < TOKENS && test_and_set_bit(t, tok_map))
		atomic_inc(&tok_dups);
	return 0;
}

static struct kprobe tok_kp = { .symbol_name = "optprobe_target_token", .pre_handler = tok_pre };

/* Issue one token and call the target with it; false once stopped. */
static bool tok_call(void)
{
	u64 t;

	if (atomic_read(&tok_stop))
		return false;
	t = atomic64_fetch_inc(&tok_next);
	if (t >= TOKENS) {
		atomic64_dec(&tok_next);
		return false;
	}
	if (in_hardirq())
		set_bit(t, tok_irq_map);
	optprobe_target_token(t);
	return true;
}

static int tok_worker(void *data)
{
	unsigned int n = 0;

	while (!kthread_should_stop()) {
		if (!tok_call()) {
			usleep_range(100, 200);
			continue;
		}
		if (!(++n & 31))
			usleep_range(10, 30);
	}
	return 0;
}

/* This CPU's current_kprobe (tok_begin() resolves it). */
static struct kprobe * __percpu *tok_current_kprobe;

static enum hrtimer_restart tok_tick(struct hrtimer *t)
{
	/*
	 * A hit while a kprobe is active on this CPU is missed by contract,
	 * on the BRK path and at the call site alike (counted, not run): the
	 * timer can interrupt an RCU callback inside kprobe_busy_begin()
	 * (kprobe_flush_task(), from delayed_put_task_struct()). Such a call
	 * would make a token that no handler may see, so none is issued; in
	 * hardirq context, nothing on this CPU can change current_kprobe
	 * before the call.
	 */
	if (!*this_cpu_ptr(tok_current_kprobe))
		tok_call();
	hrtimer_forward_now(t, ns_to_ktime(STORM_NS));
	return HRTIMER_RESTART;
}

static void tok_timer_start(void *unused)
{
	struct hrtimer *t = this_cpu_ptr(&tok_timer);

	/* hrtimer_setup() replaced hrtimer_init() in 6.15 (Kbuild detects it). */
#ifdef OPTPROBE_HAVE_HRTIMER_SETUP
	hrtimer_setup(t, tok_tick, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
#else
	hrtimer_init(t, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
	t->function = tok_tick;
#endif
	hrtimer_start(t, ns_to_ktime(STORM_NS), HRTIMER_MODE_REL_PINNED_HARD);
}

static void tok_timers_stop(void)
{
	int cpu;

	for_each_online_cpu(cpu)
		hrtimer_cancel(per_cpu_ptr(&tok_timer, cpu));
}

/*
 * Where the undelivered tokens are: the first gaps (token ranges, which
 * the round lines "N flips, T tokens so far" place in time) and how many
 * of the lost tokens a hardirq issued.
 */
static void tok_report_gaps(unsigned long issued)
{
	unsigned long t = 0, end, irq, lost = 0, lost_irq = 0;
	unsigned int shown = 0;

	while ((t = find_next_zero_bit(tok_map, issued, t)) < issued) {
		end = find_next_bit(tok_map, issued, t);
		irq = bitmap_weight(tok_irq_map, end) - bitmap_weight(tok_irq_map, t);
		if (shown++ < 8)
			pr_err("optprobe_ktest: entry_tokens: not delivered: tokens %lu..%lu (%lu, %lu from a hardirq)\n",
			       t, end - 1, end - t, irq);
		lost += end - t;
		lost_irq += irq;
		t = end;
	}
	pr_err("optprobe_ktest: entry_tokens: %lu tokens not delivered in %u gaps, %lu of them from a hardirq (%lu of %lu tokens issued from one)\n",
	       lost, shown, lost_irq, (unsigned long)bitmap_weight(tok_irq_map, issued), issued);
}

/* Start the load, run `body` (or sleep ms), stop, and judge. */
static int tok_phase(const char *name, int (*body)(void), unsigned int ms, unsigned long *missed)
{
	struct task_struct *w[WORKERS];
	unsigned long issued, set, before = tok_kp.nmissed;
	int i, ret = 0;

	bitmap_zero(tok_map, TOKENS);
	bitmap_zero(tok_irq_map, TOKENS);
	atomic64_set(&tok_next, 0);
	atomic_set(&tok_dups, 0);
	atomic_set(&tok_hits, 0);
	atomic_set(&tok_stop, 0);
	for (i = 0; i < WORKERS; i++) {
		w[i] = kthread_run(tok_worker, NULL, "tok/%d", i);
		if (IS_ERR(w[i])) {
			while (--i >= 0)
				kthread_stop(w[i]);
			return -ENOMEM;
		}
	}
	on_each_cpu(tok_timer_start, NULL, 1);
	if (body)
		ret = body();
	else
		msleep(ms);
	atomic_set(&tok_stop, 1);
	tok_timers_stop();
	for (i = 0; i < WORKERS; i++)
		kthread_stop(w[i]);
	/* Handlers of the last calls have finished (they run preempt-off). */
	synchronize_rcu();
	issued = atomic64_read(&tok_next);
	set = bitmap_weight(tok_map, TOKENS);
	*missed = tok_kp.nmissed - before;
	pr_info("optprobe_ktest: entry_tokens %s: %lu tokens, %d hits, %lu delivered, %d duplicates, %lu missed\n",
		name, issued, atomic_read(&tok_hits), set, atomic_read(&tok_dups), *missed);
	if (ret)
		return ret;
	if (atomic_read(&tok_dups) || set != issued || atomic_read(&tok_hits) != issued) {
		pr_err("optprobe_ktest: entry_tokens %s: %lu tokens but %lu delivered, %d duplicates, %d hits\n",
		       name, issued, set, atomic_read(&tok_dups), atomic_read(&tok_hits));
		tok_report_gaps(issued);
		return -EINVAL;
	}
	if (!issued)
		return -EINVAL;
	return 0;
}

static int (*tok_request)(unsigned long addr, bool on);
static int (*tok_text)(unsigned long addr, bool brk);

/* entry_window's load: let the workers run, then one 'o', then run on. */
static int tok_window_body(void)
{
	int ret;

	msleep(200);
	ret = tok_request((unsigned long)tok_kp.addr, true);
	msleep(500);
	return ret == 1 ? 0 : -EINVAL;
}
static unsigned int tok_ftrace_flips;

/*
 * `flips` flips between BRK and ftrace delivery, in rounds: each round
 * attaches the address through ftrace ('o': the BRK -> ftrace protocol),
 * flips its sym+0 between the BRK and the landing pad (the cheap flip: the
 * ops stays attached) up to FLIPS_PER_ROUND times, and detaches it ('-o':
 * the ftrace -> BRK protocol).
 */
#define FLIPS_PER_ROUND 100
static int tok_flip(void)
{
	unsigned long addr = (unsigned long)tok_kp.addr;
	unsigned int done = 0, k;
	int ret;

	while (done < flips) {
		ret = tok_request(addr, true);
		if (ret < 0)
			return ret;
		if (ret != 1) {
			pr_err("optprobe_ktest: entry_tokens: 'o' did not reach ftrace\n");
			return -EINVAL;
		}
		tok_ftrace_flips++;
		done++;
		pr_info("optprobe_ktest: entry_tokens: attached ('o') at token %lld\n",
			(long long)atomic64_read(&tok_next));
		for (k = 0; k + 1 < FLIPS_PER_ROUND && done < flips; k++, done++) {
			ret = tok_text(addr, !(k & 1));
			if (ret < 0) {
				pr_err("optprobe_ktest: entry_tokens: text flip failed (%d)\n", ret);
				return ret;
			}
			tok_ftrace_flips++;
			usleep_range(100, 1000);
		}
		pr_info("optprobe_ktest: entry_tokens: %u flips, %lld tokens so far\n",
			done, (long long)atomic64_read(&tok_next));
		ret = tok_request(addr, false);
		pr_info("optprobe_ktest: entry_tokens: detached ('-o') at token %lld\n",
			(long long)atomic64_read(&tok_next));
		if (ret < 0)
			return ret;
		if (ret) {
			pr_err("optprobe_ktest: entry_tokens: still ftrace after '-o'\n");
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The setup both token cases share: optprobe's test hooks (`hook` besides
 * the request), the bitmap, the kprobe. tok_end() undoes what was done.
 */
static void tok_end(const char *hook, void *fn, bool registered)
{
	if (registered) {
		tok_request((unsigned long)tok_kp.addr, false);
		unregister_kprobe(&tok_kp);
	}
	vfree(tok_map);
	tok_map = NULL;
	vfree(tok_irq_map);
	tok_irq_map = NULL;
	if (tok_request)
		__symbol_put("optprobe_test_request");
	tok_request = NULL;
	if (fn)
		__symbol_put(hook);
}

static int tok_begin(const char *name, const char *hook, void **fn)
{
	int ret;

	tok_current_kprobe = (void __percpu *)ktest_lookup("current_kprobe");
	if (!tok_current_kprobe) {
		pr_err("optprobe_ktest: %s: current_kprobe not found\n", name);
		return -ENOENT;
	}
	tok_request = __symbol_get("optprobe_test_request");
	*fn = __symbol_get(hook);
	if (!tok_request || !*fn) {
		pr_err("optprobe_ktest: %s needs a test build of optprobe (OPTPROBE_TEST_HOOKS=1)\n", name);
		tok_end(hook, *fn, false);
		return -ENOENT;
	}
	tok_map = vzalloc(BITS_TO_LONGS(TOKENS) * sizeof(long));
	tok_irq_map = vzalloc(BITS_TO_LONGS(TOKENS) * sizeof(long));
	ret = tok_map && tok_irq_map ? register_kprobe(&tok_kp) : -ENOMEM;
	if (ret)
		tok_end(hook, *fn, false);
	return ret;
}

int case_entry_tokens(void)
{
	bool (*skip_site)(bool on);
	unsigned long ref_missed, missed;
	void *text;
	int ret;

	ret = tok_begin("entry_tokens", "optprobe_test_entry_text", &text);
	if (ret)
		return ret;
	tok_text = text;
	skip_site = __symbol_get("optprobe_test_skip_site_after_brk");
	if (!skip_site) {
		pr_err("optprobe_ktest: entry_tokens needs a test build of optprobe (OPTPROBE_TEST_HOOKS=1)\n");
		tok_end("optprobe_test_entry_text", text, true);
		tok_text = NULL;
		return -ENOENT;
	}
	ret = tok_phase("BRK only", NULL, 2000, &ref_missed);
	/*
	 * A BRK delivery that resumed at sym+4 would now skip the call site:
	 * its record would go stale and eat a later call (what QEMU's
	 * multi-threaded TCG did at random). optprobe resumes recorded
	 * deliveries at the call site, so this must change nothing.
	 */
	skip_site(true);
	if (!ret)
		ret = tok_phase("flipping", tok_flip, 0, &missed);
	skip_site(false);
	__symbol_put("optprobe_test_skip_site_after_brk");
	if (!ret && tok_ftrace_flips != flips) {
		pr_err("optprobe_ktest: entry_tokens: %u of %u flips done\n", tok_ftrace_flips, flips);
		ret = -EINVAL;
	}
	if (!ret && missed != ref_missed) {
		pr_err("optprobe_ktest: entry_tokens: nmissed %lu, BRK reference %lu\n", missed, ref_missed);
		ret = -EINVAL;
	}
	if (!ret)
		pr_info("optprobe_ktest: entry_tokens: %u flips between BRK and ftrace delivery (%u rounds of attach, flips, detach)\n",
			flips, DIV_ROUND_UP(flips, FLIPS_PER_ROUND));
	tok_end("optprobe_test_entry_text", text, true);
	tok_text = NULL;
	return ret;
}

/*
 * entry_window: the grace period of the BRK -> ftrace protocol, made
 * deterministic. While 'o' moves the address to ftrace, the first BRK
 * delivery that the carrier sees before recording starts stalls 300 ms
 * between the handlers and the call site (test hook in optprobe's
 * post-handler), as a task preempted there would. Without the RCU-tasks
 * wait, delivery turns on meanwhile and the call reaches a delivering call
 * site unrecorded: delivered twice. Workers keep calling throughout; every
 * token must arrive exactly once.
 */
int case_entry_window(void)
{
	unsigned int (*stall)(unsigned int ms);
	unsigned long missed;
	void *fn;
	int ret;

	if (!system_supports_bti_kernel()) {
		pr_info("optprobe_ktest: entry_window: BTI not enforced, nothing goes through ftrace here\n");
		return 0;
	}
	ret = tok_begin("entry_window", "optprobe_test_stall_next_brk", &fn);
	if (ret)
		return ret;
	stall = fn;
	stall(300);
	ret = tok_phase("window", tok_window_body, 0, &missed);
	if (!ret && stall(0)) {
		pr_err("optprobe_ktest: entry_window: no BRK delivery fell in the window; nothing was tested\n");
		ret = -EINVAL;
	}
	tok_end("optprobe_test_stall_next_brk", fn, true);
	return ret;
}

/*
 * entry_post: our own probe with a pre- and a post-handler at a function's
 * entry on a BTI kernel is delivered through ftrace (the landing pad is a
 * hint, so the post-handler runs as after stepping it, pc = sym+4), and
 * disable/enable through the C ABI keep one hit per call.
 */
static atomic_t post_pre, post_post, post_bad_pc, post_bad_status;
static struct kprobe_ctlblk __percpu *post_kcb;
static unsigned int post_seen_status;

/* The kprobe status a handler runs under, as the BRK path sets it: a fault
 * or a kprobe hit inside the handler is judged by it. */
static void check_status(unsigned int want)
{
	unsigned int status = this_cpu_ptr(post_kcb)->kprobe_status;

	if (status != want) {
		post_seen_status = status;
		atomic_inc(&post_bad_status);
	}
}

static void entry_pre_handler(void *data, struct pt_regs *regs)
{
	atomic_inc(&post_pre);
	if (regs->pc != (unsigned long)optprobe_target_token)
		atomic_inc(&post_bad_pc);
	check_status(KPROBE_HIT_ACTIVE);
}

static void entry_post_handler(void *data, struct pt_regs *regs)
{
	atomic_inc(&post_post);
	if (regs->pc != (unsigned long)optprobe_target_token + 4)
		atomic_inc(&post_bad_pc);
	check_status(KPROBE_HIT_SSDONE);
}

/*
 * entry_regs: the register contract of a hit delivered through ftrace
 * (README, "The register contract at an entry probe"): what ftrace saved,
 * and every other field zero, whatever the stack held before (it is
 * poisoned first, where the callback will build its pt_regs).
 */
static struct pt_regs entry_regs_seen;
static atomic_t entry_regs_hits;

static void entry_regs_handler(void *data, struct pt_regs *regs)
{
	entry_regs_seen = *regs;
	atomic_inc(&entry_regs_hits);
}

static noinline void entry_poison_stack(void)
{
	u8 buf[1536];

	memset(buf, 0x5a, sizeof(buf));
	OPTIMIZER_HIDE_VAR(buf[0]);
	barrier_data(buf);
}

int case_entry_regs(void)
{
	struct optprobe_desc d = {
		.addr = optprobe_target_token, .name = "entry_regs", .handler = entry_regs_handler,
	};
	const struct pt_regs *r = &entry_regs_seen;
	const u64 token = 0x0123456789abcdefull;
	u64 want_pmr = GIC_PRIO_IRQON, result;
	int ret, i;

	if (!system_supports_bti_kernel()) {
		pr_info("optprobe_ktest: entry_regs: BTI not enforced, nothing goes through ftrace here\n");
		return 0;
	}
	ret = optprobe_register(&d);
	if (ret)
		return ret;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_FTRACE, "state %d (%s), want ftrace",
	      optprobe_state(d.probe), reason_of(d.probe));
	memset(&entry_regs_seen, 0xa5, sizeof(entry_regs_seen));
	preempt_disable();
	if (system_uses_irq_prio_masking())
		want_pmr = read_sysreg_s(SYS_ICC_PMR_EL1);
	entry_poison_stack();
	result = optprobe_target_token(token);
	preempt_enable();
	CHECK(result == token + 1, "the call's result changed");
	CHECK(atomic_read(&entry_regs_hits) == 1, "%d hits, want 1", atomic_read(&entry_regs_hits));
	CHECK(r->regs[0] == token && r->orig_x0 == token, "x0 %llx, orig_x0 %llx, want %llx",
	      r->regs[0], r->orig_x0, token);
	for (i = 9; i <= 28; i++)
		CHECK(r->regs[i] == 0, "x%d = %llx, want 0", i, r->regs[i]);
	CHECK(r->pc == (u64)optprobe_target_token, "pc %llx, want %px", r->pc, optprobe_target_token);
	CHECK(r->syscallno == NO_SYSCALL && !in_syscall(r), "syscallno %d", r->syscallno);
	/* The priority mask as the trampoline saves it (0 would read as
	 * interrupts masked under pseudo-NMI), the rest zero. */
	CHECK(PT_REGS_PMR(r) == want_pmr, "pmr %llx, want %llx", (u64)PT_REGS_PMR(r), want_pmr);
#ifdef OPTPROBE_PT_REGS_PMR_SAVE
	CHECK(r->unused2 == 0, "unused2 %x", r->unused2);
#endif
	CHECK(r->sdei_ttbr1 == 0, "sdei_ttbr1 %llx", r->sdei_ttbr1);
	CHECK(!memchr_inv(&r->stackframe, 0, sizeof(*r) - offsetof(struct pt_regs, stackframe)),
	      "pt_regs from the frame record on is not zero");
	CHECK((r->pstate & PSR_MODE_MASK) == (read_sysreg(CurrentEL) | PSR_MODE_THREAD_BIT),
	      "pstate mode %llx", r->pstate & PSR_MODE_MASK);
	CHECK(!(r->pstate & ~(u64)(PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT | PSR_MODE_MASK)),
	      "pstate %llx: more than DAIF and the mode", r->pstate);
	CHECK(interrupts_enabled(r), "interrupts_enabled() is false in a context with interrupts on");
	pr_info("optprobe_ktest: entry_regs: x0 and orig_x0 the token, x9-x28 0, pmr %llx, the rest 0, pstate %llx\n",
		(u64)PT_REGS_PMR(r), r->pstate);
out:
	optprobe_unregister(d.probe);
	return ret;
}

int case_entry_post(void)
{
	struct optprobe_desc d = {
		.addr = optprobe_target_token, .name = "entry_post",
		.handler = entry_pre_handler, .post_handler = entry_post_handler,
	};
	int ret, i, registered = 0;

	if (!system_supports_bti_kernel()) {
		pr_info("optprobe_ktest: entry_post: BTI not enforced, nothing goes through ftrace here\n");
		return 0;
	}
	post_kcb = (void __percpu *)ktest_lookup("kprobe_ctlblk");
	if (!post_kcb)
		return -ENOENT;
	ret = optprobe_register(&d);
	CHECK(!ret, "register: %d", ret);
	registered = 1;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_FTRACE, "state %d (%s), want ftrace",
	      optprobe_state(d.probe), reason_of(d.probe));
	for (i = 0; i < 100; i++)
		optprobe_target_token(i);
	CHECK(atomic_read(&post_pre) == 100 && atomic_read(&post_post) == 100,
	      "%d pre, %d post hits, want 100 each", atomic_read(&post_pre), atomic_read(&post_post));
	ret = optprobe_disable(d.probe);
	CHECK(!ret && optprobe_state(d.probe) == OPTPROBE_STATE_DISABLED, "disable: %d, state %d",
	      ret, optprobe_state(d.probe));
	for (i = 0; i < 10; i++)
		optprobe_target_token(i);
	CHECK(atomic_read(&post_pre) == 100, "disabled: %d hits", atomic_read(&post_pre));
	ret = optprobe_enable(d.probe);
	CHECK(!ret && optprobe_state(d.probe) == OPTPROBE_STATE_FTRACE, "enable: %d, state %d (%s)",
	      ret, optprobe_state(d.probe), reason_of(d.probe));
	for (i = 0; i < 10; i++)
		optprobe_target_token(i);
	CHECK(atomic_read(&post_pre) == 110 && atomic_read(&post_post) == 110,
	      "re-enabled: %d pre, %d post", atomic_read(&post_pre), atomic_read(&post_post));
	CHECK(!atomic_read(&post_bad_pc), "%d handler calls saw the wrong pc", atomic_read(&post_bad_pc));
	CHECK(!atomic_read(&post_bad_status), "%d handler calls saw the wrong kprobe_status (last %#x; want %#x pre, %#x post)",
	      atomic_read(&post_bad_status), post_seen_status, KPROBE_HIT_ACTIVE, KPROBE_HIT_SSDONE);
	pr_info("optprobe_ktest: entry_post: 110 pre and 110 post hits through ftrace, pc sym+0 and sym+4, status active then ssdone\n");
out:
	if (registered)
		optprobe_unregister(d.probe);
	return ret;
}
