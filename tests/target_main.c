// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_target: functions for the tests to probe. Loaded and unloaded by
 * the kselftests, including while probes are attached to it.
 */
#include <linux/module.h>
#include <linux/compiler.h>
#include "target.h"

/* A C function for workloads: small, not inlined, with a real prologue. */
noinline u64 optprobe_target_work(u64 x)
{
	x = x * 2654435761u + 1;
	barrier();
	return x ^ (x >> 7);
}

EXPORT_SYMBOL_GPL(optprobe_target_work);
EXPORT_SYMBOL_GPL(optprobe_target_args);
EXPORT_SYMBOL_GPL(optprobe_target_args_insn);
EXPORT_SYMBOL_GPL(optprobe_target_call_args);
EXPORT_SYMBOL_GPL(optprobe_target_call_args_ret);
EXPORT_SYMBOL_GPL(optprobe_target_call_args_body);
EXPORT_SYMBOL_GPL(optprobe_target_flags);
EXPORT_SYMBOL_GPL(optprobe_target_flags_insn);
EXPORT_SYMBOL_GPL(optprobe_target_adrp);
EXPORT_SYMBOL_GPL(optprobe_target_adrp_insn);
EXPORT_SYMBOL_GPL(optprobe_target_many);
EXPORT_SYMBOL_GPL(optprobe_target_many_insns);
EXPORT_SYMBOL_GPL(optprobe_target_caller_sp);

static int __init target_init(void)
{
	return 0;
}

static void __exit target_exit(void)
{
}

module_init(target_init);
module_exit(target_exit);
MODULE_DESCRIPTION("optprobe test target functions");
MODULE_LICENSE("GPL");
