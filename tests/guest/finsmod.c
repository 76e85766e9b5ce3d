// SPDX-License-Identifier: GPL-2.0
/*
 * finsmod FILE [PARAM...]: load a module once, through finit_module(2).
 *
 * The kselftests' insmod (tests/kselftest/lib/common.sh) runs it instead of
 * busybox's applet (scripts/qemu-run installs it as /bin/finsmod; busybox
 * sh runs its own applets even where /bin holds another file of that
 * name). Busybox's insmod falls back to init_module(2) whenever finit_module(2)
 * fails, for any reason: a module whose init fails (an optprobe_ktest case
 * that failed) is then loaded and run a second time, and a test that failed
 * once and passed on the rerun would read as passed.
 *
 * Freestanding like runas.c (raw syscalls, no libc). Exits 0 when loaded,
 * 1 with "finsmod: FILE: error -ERRNO" on stderr otherwise.
 */
#include "freestanding.h"

#define O_RDONLY_CLOEXEC 02000000

static char params[4096];

static long copy(char *to, const char *from, long room)
{
	long n = 0;

	while (from[n] && n < room) {
		to[n] = from[n];
		n++;
	}
	return n;
}

static void say_error(const char *file, long err)
{
	char out[512], num[24];
	long n = 0, k = 0, i;
	unsigned long v = -err;

	n += copy(out + n, "finsmod: ", 9);
	n += copy(out + n, file, 400);
	n += copy(out + n, ": error -", 9);
	do {
		num[k++] = '0' + v % 10;
		v /= 10;
	} while (v);
	for (i = k - 1; i >= 0; i--)
		out[n++] = num[i];
	out[n++] = '\n';
	sys3(__NR_write, 2, (long)out, n);
}

static void run(long argc, char **argv, char **envp)
{
	long fd, ret, len = 0, i;

	if (argc < 2) {
		sys3(__NR_write, 2, (long)"usage: finsmod FILE [PARAM...]\n", 31);
		sys3(__NR_exit, 2, 0, 0);
	}
	for (i = 2; i < argc && len < (long)sizeof(params) - 2; i++) {
		if (len)
			params[len++] = ' ';
		len += copy(params + len, argv[i], sizeof(params) - 1 - len);
	}
	params[len] = 0;
	fd = sys3(__NR_openat, AT_FDCWD, (long)argv[1], O_RDONLY_CLOEXEC);
	if (fd < 0) {
		say_error(argv[1], fd);
		sys3(__NR_exit, 1, 0, 0);
	}
	ret = sys3(__NR_finit_module, fd, (long)params, 0);
	sys3(__NR_close, fd, 0, 0);
	if (ret < 0) {
		say_error(argv[1], ret);
		sys3(__NR_exit, 1, 0, 0);
	}
	sys3(__NR_exit, 0, 0, 0);
}

