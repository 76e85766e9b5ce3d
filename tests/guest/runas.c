// SPDX-License-Identifier: GPL-2.0
/*
 * Guest helpers, freestanding (raw syscalls, no libc) so the test bed can
 * build them for the arm64 guest with clang alone. One binary, two names:
 *
 *   runas UID CMD
 *	run "sh -c CMD" as UID (and GID UID) with no supplementary groups.
 *   fuzzwrite LINES TARGET FIRST COUNT
 *	write lines FIRST..FIRST+COUNT-1 of file LINES to file TARGET, one open,
 *	write and close each (the shell's read loop is far too slow under
 *	TCG); prints "accepted N refused N" and exits 0.
 */
#include "freestanding.h"

#define O_WRONLY 1

static long parse(const char *s)
{
	long v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return v;
}

static char lines[1 << 20];

static long put_num(char *p, unsigned long v)
{
	char tmp[24];
	long n = 0, i;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

static void fuzzwrite(char **argv)
{
	long fd, len = 0, r, line = 0, first = parse(argv[3]), count = parse(argv[4]);
	unsigned long accepted = 0, refused = 0;
	char *p, *end, out[64];

	fd = sys3(__NR_openat, AT_FDCWD, (long)argv[1], 0);
	if (fd < 0)
		sys3(__NR_exit, 5, 0, 0);
	while ((r = sys3(__NR_read, fd, (long)lines + len, sizeof(lines) - len)) > 0)
		len += r;
	sys3(__NR_close, fd, 0, 0);
	for (p = lines; p < lines + len; p = end + 1, line++) {
		for (end = p; end < lines + len && *end != '\n'; end++)
			;
		if (line < first || line >= first + count)
			continue;
		fd = sys3(__NR_openat, AT_FDCWD, (long)argv[2], O_WRONLY);
		if (fd < 0)
			sys3(__NR_exit, 6, 0, 0);
		if (sys3(__NR_write, fd, (long)p, end - p) >= 0)
			accepted++;
		else
			refused++;
		sys3(__NR_close, fd, 0, 0);
	}
	p = out;
	for (r = 0; r < 9; r++)
		*p++ = "accepted "[r];
	p += put_num(p, accepted);
	for (r = 0; r < 9; r++)
		*p++ = " refused "[r];
	p += put_num(p, refused);
	*p++ = '\n';
	sys3(__NR_write, 1, (long)out, p - out);
	sys3(__NR_exit, 0, 0, 0);
}

static void run(long argc, char **argv, char **envp)
{
	const char *name = argv[0], *base = name;

	for (; *name; name++)
		if (*name == '/')
			base = name + 1;
	if (base[0] == 'f' && argc == 5)
		fuzzwrite(argv);
	long id;
	char *args[] = { "sh", "-c", 0, 0 };

	if (argc != 3)
		sys3(__NR_exit, 2, 0, 0);
	id = parse(argv[1]);
	args[2] = argv[2];
	if (sys3(__NR_setgroups, 0, 0, 0) || sys3(__NR_setgid, id, 0, 0) || sys3(__NR_setuid, id, 0, 0))
		sys3(__NR_exit, 3, 0, 0);
	sys3(__NR_execve, (long)"/bin/sh", (long)args, (long)envp);
	sys3(__NR_exit, 4, 0, 0);
}

