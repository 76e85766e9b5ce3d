// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_ktest: in-kernel test cases, driven by the kselftests. This file
 * is the driver: parameters, shared handlers and workers, the case table.
 *
 *   insmod optprobe_ktest.ko case=NAME [seconds=N] [calls=N]
 *
 * Loading runs one case; init returns 0 when it passes (the module then stays
 * loaded until rmmod) and -EINVAL when it fails, after a one-line reason.
 * Uses optprobe only through its C ABI (include/optprobe.h).
 */
#include "ktest.h"

char *test_case = "";
module_param_named(case, test_case, charp, 0);
MODULE_PARM_DESC(case, "hits|flags|fallback|backtrace|coexist|scale|races|torture|reloc|reason|handles|missed|pages|regs|late_post|faults|leak|call|cost|hold_post|hold_other|hold_pc|hold_override|entry_tokens|entry_window|entry_post|entry_regs");
unsigned int seconds = 10;
module_param(seconds, uint, 0);
unsigned int calls = 100;
module_param(calls, uint, 0);
unsigned int seed;
module_param(seed, uint, 0);
MODULE_PARM_DESC(seed, "torture: random seed (0: pick one and print it)");
unsigned int scale_probes = 1000;
module_param(scale_probes, uint, 0);
MODULE_PARM_DESC(scale_probes, "scale: number of probes (default 1000)");

/* An unexported kernel symbol, found the way optprobe finds its own. */
void *ktest_lookup(const char *name)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	unsigned long (*lookup)(const char *name);

	if (register_kprobe(&kp))
		return NULL;
	lookup = (void *)kp.addr;
	unregister_kprobe(&kp);
	return (void *)lookup(name);
}

void count_handler(void *data, struct pt_regs *regs)
{
	atomic_inc((atomic_t *)data);
}

void post_handler(void *data, struct pt_regs *regs)
{
}

int worker_loop(void *data)
{
	struct worker *w = data;

	while (!kthread_should_stop()) {
		w->target(w->calls);
		w->calls++;
		/*
		 * Sleep now and then: with CONFIG_PREEMPT, cond_resched() is a
		 * no-op, and a task that never switches voluntarily holds off
		 * RCU-tasks (and so every unregister) for as long as it runs.
		 */
		if (!(w->calls & 63))
			usleep_range(20, 50);
	}
	return 0;
}

u64 call_args_once(u64 x)
{
	return optprobe_target_call_args(x, 2, 3, 4, 5, 6, 7, 8);
}

/* --- call: drive the target from shell tests ------------------------------ */

static int case_call(void)
{
	unsigned int i;

	for (i = 0; i < calls; i++)
		optprobe_target_call_args(i, 2, 3, 4, 5, 6, 7, 8);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(void);
} cases[] = {
	{ "hits", case_hits },
	{ "flags", case_flags },
	{ "fallback", case_fallback },
	{ "backtrace", case_backtrace },
	{ "scale", case_scale },
	{ "races", case_races },
	{ "torture", case_torture },
	{ "coexist", case_coexist },
	{ "call", case_call },
	{ "cost", case_cost },
	{ "reloc", case_reloc },
	{ "reason", case_reason },
	{ "handles", case_handles },
	{ "leak", case_leak },
	{ "missed", case_missed },
	{ "context", case_context },
	{ "pages", case_pages },
	{ "regs", case_regs },
	{ "late_post", case_late_post },
	{ "faults", case_faults },
	{ "hold_post", case_hold_post },
	{ "hold_other", case_hold_other },
	{ "hold_pc", case_hold_pc },
	{ "hold_override", case_hold_override },
	{ "entry_tokens", case_entry_tokens },
	{ "entry_window", case_entry_window },
	{ "entry_post", case_entry_post },
	{ "entry_regs", case_entry_regs },
};

static int __init ktest_init(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (strcmp(test_case, cases[i].name))
			continue;
		ret = cases[i].run();
		if (ret) {
			pr_err("optprobe_ktest: %s: failed (%d)\n", test_case, ret);
			return -EINVAL;
		}
		pr_info("optprobe_ktest: %s: passed\n", test_case);
		return 0;
	}
	pr_err("optprobe_ktest: unknown case '%s'\n", test_case);
	return -EINVAL;
}

static void __exit ktest_exit(void)
{
	foreign_exit();
}

module_init(ktest_init);
module_exit(ktest_exit);
MODULE_DESCRIPTION("optprobe in-kernel tests");
MODULE_LICENSE("GPL");
