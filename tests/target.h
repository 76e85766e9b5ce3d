/* SPDX-License-Identifier: GPL-2.0 */
/* Functions the test-target module provides (tests/target_*.{c,S}). */
#ifndef OPTPROBE_TARGET_H
#define OPTPROBE_TARGET_H

#include <linux/types.h>

#define OPTPROBE_TARGET_MANY 1024

u64 optprobe_target_args(u64, u64, u64, u64, u64, u64, u64, u64);
u64 optprobe_target_call_args(u64, u64, u64, u64, u64, u64, u64, u64);
u64 optprobe_target_adrp(void);
u64 optprobe_target_flags(u64 a, u64 b);
extern u32 optprobe_target_call_args_body[], optprobe_target_flags_insn[];
u64 optprobe_target_many(u64 x);
u64 optprobe_target_work(u64 x);
extern u32 optprobe_target_args_insn[], optprobe_target_call_args_ret[];
extern u32 optprobe_target_adrp_insn[], optprobe_target_many_insns[];
extern u64 optprobe_target_caller_sp;

#endif
