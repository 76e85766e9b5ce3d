/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the guest's freestanding tools (runas.c, bpfcount.c, finsmod.c)
 * share: raw arm64 Linux system calls and the process entry, so that the
 * test bed builds them with clang alone (no libc, no sysroot).
 *
 * Each tool defines run(argc, argv, envp), which must end in exit.
 */
#ifndef OPTPROBE_GUEST_FREESTANDING_H
#define OPTPROBE_GUEST_FREESTANDING_H

#define __NR_ioctl 29
#define __NR_openat 56
#define __NR_close 57
#define __NR_read 63
#define __NR_write 64
#define __NR_exit 93
#define __NR_nanosleep 101
#define __NR_setgid 144
#define __NR_setuid 146
#define __NR_setgroups 159
#define __NR_execve 221
#define __NR_perf_event_open 241
#define __NR_finit_module 273
#define __NR_bpf 280
#define AT_FDCWD -100

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
}
#define sys3(nr, a, b, c) sys6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static void run(long argc, char **argv, char **envp);

/* Entry: sp holds argc, then argv[], NULL, envp[]. */
__asm__(".globl _start\n_start:\n"
	"	ldr x0, [sp]\n"
	"	add x1, sp, #8\n"
	"	add x2, x1, x0, lsl #3\n"
	"	add x2, x2, #8\n"
	"	bl run_entry\n");

void run_entry(long argc, char **argv, char **envp)
{
	run(argc, argv, envp);
}

#endif
