// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_inittext: optprobes its own __init helper at load and keeps the
 * probe past init, when the kernel frees the init text; unregisters it at
 * unload. tests/kselftest/47_init_text.sh reads the listing in between.
 */
#include <linux/atomic.h>
#include <linux/init.h>
#include <linux/module.h>
#include "../include/optprobe.h"

u64 optprobe_inittext_helper(u64 x);
extern u32 optprobe_inittext_insn[];

static struct optprobe *init_probe;
static atomic_t init_hits;

static void count_hit(void *data, struct pt_regs *regs)
{
	atomic_inc(data);
}

static int __init inittext_init(void)
{
	struct optprobe_desc d = {
		.addr = optprobe_inittext_insn, .name = "inittext",
		.handler = count_hit, .data = &init_hits,
	};
	u64 sum = 0;
	int ret, i;

	ret = optprobe_register(&d);
	if (ret) {
		pr_err("optprobe_inittext: register on init text: %d\n", ret);
		return ret;
	}
	for (i = 0; i < 3; i++)
		sum += optprobe_inittext_helper(i);
	if (sum != 6 || atomic_read(&init_hits) != 3 ||
	    optprobe_state(d.probe) != OPTPROBE_STATE_OPTIMIZED) {
		pr_err("optprobe_inittext: sum %llu, %d hits, state %d (%s); want 6, 3, optimized\n",
		       sum, atomic_read(&init_hits), optprobe_state(d.probe),
		       optprobe_reason(d.probe) ?: "-");
		optprobe_unregister(d.probe);
		return -EINVAL;
	}
	init_probe = d.probe;
	pr_info("optprobe_inittext: probe on init text optimized, 3 hits\n");
	return 0;
}

static void __exit inittext_exit(void)
{
	pr_info("optprobe_inittext: at unload the probe is in state %d (%s)\n",
		optprobe_state(init_probe), optprobe_reason(init_probe) ?: "-");
	optprobe_unregister(init_probe);
}

module_init(inittext_init);
module_exit(inittext_exit);
MODULE_DESCRIPTION("optprobe test: a probe in a module's init text");
MODULE_LICENSE("GPL");
