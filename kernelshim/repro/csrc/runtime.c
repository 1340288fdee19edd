#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/errqueue.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * The runtime of a splicecheck C reproducer. It does what `splicecheck run
 * --backend kernel` does with a trace, in plain C: every op on this kernel,
 * in a network namespace of its own, each trace thread on a thread of its
 * own, and the same runner rules (trace/runner.go):
 *
 *  - ops are handed to their threads in trace order; after each, the
 *    runner waits until every thread is idle or blocked in the kernel
 *    (/proc/self/task/TID/stat says S inside the op's own syscall), so an
 *    op blocks only its own thread;
 *  - after each op, its thread waits until the observable state (every
 *    socket's poll mask, SIOCINQ, SIOCOUTQ and TCP_INFO, every other
 *    thread's scheduler state) has not changed for 1 ms, no segment is
 *    unacked and no kworker or ksoftirqd is runnable, for at most 100 ms
 *    (the settle of kernelshim/settle.go);
 *  - an op still blocked when every op has been handed out times out 2 s
 *    later, one at a time, in the order the ops started: the runner shuts
 *    its socket down (then harder, 50 ms apart) and reports -ETIMEDOUT
 *    (runner);
 *  - the results are printed at the end, in trace order, as
 *    `LINE: OP => RESULT`, long data as its length and SHA-256.
 *
 * SPLICECHECK_TIME_SCALE=K in the environment stretches every trace
 * duration K times (a slow guest), as the kernel backend's TimeScale does.
 */

enum kind {
	K_CONN = 1, K_MAP, K_PROG, K_INSERT, K_DELETE, K_PAIR, K_SEND, K_RECV,
	K_SPLICE, K_PIPE, K_IOCOPY, K_FIONREAD, K_POLL, K_STATE, K_SHUTDOWN,
	K_CLOSE, K_SET, K_SLEEP, K_JOIN, K_ERRQUEUE,
};

enum flag {
	F_DONTWAIT = 1, F_PEEK = 2, F_WAITALL = 4, F_NONBLOCK = 8, F_RST = 16,
	F_PAIR = 32, F_ZEROCOPY = 64, F_READWRITE = 128,
};

enum opt {
	O_RCVTIMEO = 1, O_NONBLOCKOPT, O_BUSYPOLL, O_RCVBUF, O_SNDBUF,
	O_PIPESIZE, O_RXCOPYBREAK, O_ZEROCOPYOPT,
};

/* One trace op, as the generator wrote it. */
struct op {
	int line;
	const char *text;   /* the op's canonical text (trace.Op.String) */
	enum kind kind;
	int thread;         /* index into thread_names */
	int a, b;           /* socket indexes; -1 unused */
	int map;            /* map index; -1 unused */
	int maptype;        /* map: BPF_MAP_TYPE_* */
	long long key, size;
	int flags;
	int how;            /* shutdown: SHUT_* */
	int opt;            /* set: enum opt */
	const unsigned char *data; /* send: literal bytes, or NULL for a pattern */
	long datalen;
	int prog;           /* prog: index into progs */
	int target;         /* join: thread index */
};

/* The programs of one `prog` op: an optional stream parser, then the
 * verdict. mapinsn is the index of the verdict's ld_imm64 of the map, or
 * -1; its imm is the map's fd at load time. */
struct prog {
	int type;           /* BPF_PROG_TYPE_SK_MSG or BPF_PROG_TYPE_SK_SKB */
	int attach;         /* the verdict's attach type */
	const struct bpf_insn *verdict;
	int nverdict;
	int mapinsn;
	const struct bpf_insn *parser; /* NULL when none */
	int nparser;
};

/* The values the pairing programs' holes take at load time. */
enum { HOLE_RENDEZVOUS = 1, HOLE_RESULTS, HOLE_KFUNC };

/* A pairing program: PAIR_RFC calls bpf_sock_splice_pair (vmlinux),
 * PAIR_MODULE bpf_tcp_splice_pair (the tcp_splice module's BTF, passed at
 * fd_array[1]). */
enum { PAIR_RFC, PAIR_MODULE };
struct hole {
	int insn, what;
};
struct pairprog {
	const struct bpf_insn *insns;
	int n;
	const struct hole *holes;
	int nholes;
};

/* @TABLES@ */

#define NSEC 1000000000LL
#define PATTERN_CHUNK (251 * 8192)
#define MAX_PROGS 16

enum phase { PH_IDLE, PH_BUSY, PH_SYSCALL, PH_SLEEP, PH_SETTLE };

struct result {
	long long n;        /* -1: no count */
	int err;
	char *word;
	unsigned char *data;
	long datalen;
	int hasdata;
	int runner;         /* the runner's timeout */
};

struct sock {
	int fd, pipe_r, pipe_w;
	long long rcvtimeo;  /* ns, for iocopy */
	long long sent;      /* bytes sent, for pattern offsets */
	int holds, hold_fd, hold_flags; /* iocopies holding it non-blocking */
};

struct bmap {
	int fd;
	int progs[MAX_PROGS], attach[MAX_PROGS], nprogs;
};

struct thr {
	pthread_t pt;
	pid_t tid;
	int started;
	_Atomic int phase;
	_Atomic long sysno;
	int efd;            /* eventfd: the runner's abort of a sleep or iocopy */
	int *queue, qhead, qtail; /* its ops, as many as the trace gives it */
	pthread_cond_t cond;
	/* Guarded by mu. */
	int dispatched, completed, running, joining, cur;
	long long deadline, blocked_at, canceled, abort_next;
	int abort_step, abortable, dupfd;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static struct sock socks[NSOCKS];
static struct bmap maps[NMAPS];
static struct thr thrs[NTHREADS];
static struct result results[NOPS];
static int done[NOPS];
static int all_dispatched, firing = -1;
static long long time_scale = 1;
static unsigned char *pattern_buf;

long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "repro: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p)
		die("out of memory");
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		die("out of memory");
	return p;
}

long bpf(int cmd, union bpf_attr *attr);
int prog_attach(int cmd, int target, int prog, int type);

/* ---- results ---- */

struct result r_ok(void) { return (struct result){ .n = -1, .word = xstrdup("ok") }; }
struct result r_count(long long n) { return (struct result){ .n = n }; }
struct result r_fail(int err) { return (struct result){ .n = -1, .err = err ? err : EIO }; }
struct result r_word(const char *w) { return (struct result){ .n = -1, .word = xstrdup(w) }; }
struct result r_timeout(void) { return (struct result){ .n = -1, .err = ETIMEDOUT, .runner = 1 }; }

struct result r_data(long long n, const unsigned char *d)
{
	struct result r = r_count(n);
	r.data = xcalloc(n > 0 ? n : 1, 1);
	if (n > 0)
		memcpy(r.data, d, n);
	r.datalen = n, r.hasdata = 1;
	return r;
}

const char *errno_name(int e, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].e == e)
			return errno_names[i].name;
	snprintf(buf, len, "E%d", e);
	return buf;
}

/* SHA-256 (FIPS 180-4), for long data. */
static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

void sha256_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], v[8];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, h, sizeof(v));
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = v[7] + (ROR(v[4], 6) ^ ROR(v[4], 11) ^ ROR(v[4], 25)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) + sha_k[i] + w[i];
		uint32_t t2 = (ROR(v[0], 2) ^ ROR(v[0], 13) ^ ROR(v[0], 22)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		memmove(v + 1, v, 7 * sizeof(v[0]));
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		h[i] += v[i];
}

void sha256_hex(const unsigned char *d, long n, char out[65])
{
	uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	unsigned char tail[128] = { 0 };
	long full = n / 64 * 64, rest = n - full;
	for (long i = 0; i < full; i += 64)
		sha256_block(h, d + i);
	memcpy(tail, d + full, rest);
	tail[rest] = 0x80;
	long tl = rest < 56 ? 64 : 128;
	uint64_t bits = (uint64_t)n * 8;
	for (int i = 0; i < 8; i++)
		tail[tl - 1 - i] = bits >> (8 * i);
	for (long i = 0; i < tl; i += 64)
		sha256_block(h, tail + i);
	for (int i = 0; i < 8; i++)
		snprintf(out + 8 * i, 9, "%08x", h[i]);
}

/* utf8_decode decodes one rune as Go's utf8.DecodeRune does: an invalid
 * sequence is the error rune of width 1 (*r = -1). */
int utf8_decode(const unsigned char *p, long n, long *r)
{
	unsigned c = p[0];
	int w;
	long v, min;
	if (c < 0x80) {
		*r = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		w = 2, v = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		w = 3, v = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		w = 4, v = c & 0x07, min = 0x10000;
	else
		goto bad;
	if (n < w)
		goto bad;
	for (int i = 1; i < w; i++) {
		if ((p[i] & 0xc0) != 0x80)
			goto bad;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		goto bad;
	*r = v;
	return w;
bad:
	*r = -1;
	return 1;
}

/* is_print is Go's strconv.IsPrint: the generator wrote the printable
 * ranges above U+007F (print_ranges). */
int is_print(long r)
{
	if (r < 0x80)
		return r >= 0x20 && r < 0x7f;
	int lo = 0, hi = sizeof(print_ranges) / sizeof(print_ranges[0]);
	while (lo < hi) {
		int m = (lo + hi) / 2;
		if (r < print_ranges[m][0])
			hi = m;
		else if (r > print_ranges[m][1])
			lo = m + 1;
		else
			return 1;
	}
	return 0;
}

/* quote prints d as Go's strconv.Quote renders it. */
void quote(FILE *f, const unsigned char *d, long n)
{
	fputc('"', f);
	for (long i = 0; i < n;) {
		long r;
		int w = utf8_decode(d + i, n - i, &r);
		if (r < 0) {
			fprintf(f, "\\x%02x", d[i]);
		} else if (r == '"' || r == '\\') {
			fprintf(f, "\\%c", (int)r);
		} else if (is_print(r)) {
			fwrite(d + i, 1, w, f);
		} else {
			switch (r) {
			case '\a': fputs("\\a", f); break;
			case '\b': fputs("\\b", f); break;
			case '\f': fputs("\\f", f); break;
			case '\n': fputs("\\n", f); break;
			case '\r': fputs("\\r", f); break;
			case '\t': fputs("\\t", f); break;
			case '\v': fputs("\\v", f); break;
			default:
				if (r < ' ' || r == 0x7f)
					fprintf(f, "\\x%02x", (unsigned)r);
				else if (r < 0x10000)
					fprintf(f, "\\u%04lx", r);
				else
					fprintf(f, "\\U%08lx", r);
			}
		}
		i += w;
	}
	fputc('"', f);
}

void print_result(FILE *f, const struct op *o, const struct result *r)
{
	char buf[16];
	fprintf(f, "%d: %s => ", o->line, o->text);
	if (r->word)
		fputs(r->word, f);
	else if (r->n < 0)
		fprintf(f, "-%s", errno_name(r->err, buf, sizeof(buf)));
	else {
		fprintf(f, "%lld", r->n);
		if (r->err)
			fprintf(f, " -%s", errno_name(r->err, buf, sizeof(buf)));
	}
	if (r->hasdata) {
		fputc(' ', f);
		if (r->datalen <= 64) {
			quote(f, r->data, r->datalen);
		} else {
			char hex[65];
			sha256_hex(r->data, r->datalen, hex);
			fprintf(f, "len=%ld sha256=%s", r->datalen, hex);
		}
	}
	if (r->runner)
		fputs(" (runner)", f);
	fputc('\n', f);
}

/* ---- /proc ---- */

int read_file(const char *path, char *buf, int len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), n, total = 0;
	if (fd < 0)
		return -1;
	while (total < len - 1 && (n = read(fd, buf + total, len - 1 - total)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = 0;
	return total;
}

/* task_state reads thread tid's state letter, the syscall it is in (-2
 * when running) and its run count (schedstat field 3, -1 unknown). */
int task_state(pid_t tid, char *state, long *sysno, long long *pcount)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	char *p = strrchr(buf, ')');
	*state = p && p[1] && p[2] ? p[2] : 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	*sysno = strncmp(buf, "running", 7) == 0 ? -2 : strtol(buf, NULL, 10);
	if (pcount) {
		*pcount = -1;
		snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
		if (read_file(path, buf, sizeof(buf)) > 0) {
			long long a, b, c;
			if (sscanf(buf, "%lld %lld %lld", &a, &b, &c) == 3)
				*pcount = c;
		}
	}
	return 0;
}

/* The kernel's per-CPU kworkers and ksoftirqd threads: deferred network
 * work (psock backlog, softirqs) keeps one of them runnable. */
static int kw_fds[4096], kw_n;
static long long kw_scanned = -1;

int is_kworker(const char *stat)
{
	const char *l = strchr(stat, '('), *r = strrchr(stat, ')');
	if (!l || !r || r < l)
		return 0;
	char comm[64];
	int n = r - l - 1;
	if (n <= 0 || n >= (int)sizeof(comm))
		return 0;
	memcpy(comm, l + 1, n);
	comm[n] = 0;
	if (strncmp(comm, "kworker/", 8) == 0) {
		const char *p = comm + 8;
		int cpu = 0, wk = 0;
		while (*p >= '0' && *p <= '9')
			p++, cpu++;
		if (!cpu || *p++ != ':')
			return 0;
		while (*p >= '0' && *p <= '9')
			p++, wk++;
		if (!wk || (*p && *p != '-'))
			return 0;
	} else if (strncmp(comm, "ksoftirqd/", 10) != 0) {
		return 0;
	}
	int ppid = 0;
	char st;
	if (sscanf(r + 1, " %c %d", &st, &ppid) != 2)
		return 0;
	return ppid == 2;
}

void kw_rescan(void)
{
	for (int i = 0; i < kw_n; i++)
		close(kw_fds[i]);
	kw_n = 0;
	kw_scanned = now_ns();
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *e;
	char path[300], buf[256];
	while ((e = readdir(d)) && kw_n < (int)(sizeof(kw_fds) / sizeof(kw_fds[0]))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		int n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		if (n > 0 && is_kworker(buf))
			kw_fds[kw_n++] = fd;
		else
			close(fd);
	}
	closedir(d);
}

int kw_runnable(void)
{
	static pthread_mutex_t kw_mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&kw_mu);
	if (kw_scanned < 0 || now_ns() - kw_scanned >= 200000000LL)
		kw_rescan();
	int busy = 0, live = 0;
	char buf[256];
	for (int i = 0; i < kw_n; i++) {
		int n = pread(kw_fds[i], buf, sizeof(buf) - 1, 0);
		if (n <= 0) {
			close(kw_fds[i]);
			continue;
		}
		buf[n] = 0;
		kw_fds[live++] = kw_fds[i];
		char *r = strrchr(buf, ')');
		if (r && r[1] && r[2] == 'R')
			busy = 1;
	}
	kw_n = live;
	pthread_mutex_unlock(&kw_mu);
	return busy;
}

/* ---- threads: blocked and settled ---- */

/* blocked reports whether thread t waits in its op for another thread or
 * for time: in a sleep, or asleep (S) in the very syscall its op makes. */
int blocked(struct thr *t)
{
	int p = t->phase;
	if (p == PH_SLEEP)
		return 1;
	if (p != PH_SYSCALL)
		return 0;
	long want = t->sysno, sys;
	char st;
	if (task_state(t->tid, &st, &sys, NULL) < 0)
		return 0;
	if (t->phase != PH_SYSCALL)
		return 0;
	return st == 'S' && sys == want;
}

void enter_syscall(struct thr *t, long nr)
{
	t->sysno = nr;
	t->phase = PH_SYSCALL;
}

/* snapshot appends the run's observable state to buf; it returns the
 * length, and sets *inflight when a socket has unacked segments. */
int snapshot(struct thr *self, char *buf, int len, int *inflight)
{
	int n = 0;
	*inflight = 0;
	pthread_mutex_lock(&mu);
	struct pollfd pfds[NSOCKS];
	int np = 0;
	for (int i = 0; i < NSOCKS; i++)
		if (socks[i].fd >= 0)
			pfds[np++] = (struct pollfd){ .fd = socks[i].fd, .events = POLLIN | POLLOUT | POLLRDHUP };
	if (np)
		poll(pfds, np, 0);
	for (int i = 0; i < np && n < len - 200; i++) {
		int inq = -1, outq = -1;
		if (ioctl(pfds[i].fd, SIOCINQ, &inq) < 0)
			inq = -1;
		if (ioctl(pfds[i].fd, SIOCOUTQ, &outq) < 0)
			outq = -1;
		n += snprintf(buf + n, len - n, "%x,%d,%d", pfds[i].revents, inq, outq);
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		if (getsockopt(pfds[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0) {
			n += snprintf(buf + n, len - n, ",%u,%u,%u,%llu,%llu", ti.tcpi_state, ti.tcpi_unacked,
				      ti.tcpi_notsent_bytes, (unsigned long long)ti.tcpi_bytes_acked,
				      (unsigned long long)ti.tcpi_bytes_received);
			if (ti.tcpi_unacked)
				*inflight = 1;
		}
		buf[n++] = ' ';
	}
	for (int i = 0; i < NTHREADS && n < len - 100; i++) {
		struct thr *t = &thrs[i];
		if (!t->started || t == self)
			continue;
		int p = t->phase;
		n += snprintf(buf + n, len - n, "%d=%d", i, p);
		char st;
		long sys;
		long long pc;
		if (p == PH_SYSCALL && task_state(t->tid, &st, &sys, &pc) == 0)
			n += snprintf(buf + n, len - n, ",%c,%ld,%lld", st, sys, pc);
		buf[n++] = ' ';
	}
	pthread_mutex_unlock(&mu);
	return n;
}

/* settle waits until the run's observable state is stable (see the top of
 * this file). */
void settle(struct thr *self)
{
	static const long long window = 1000000, maxwait = 100000000, sample = 250000;
	char *prev = xcalloc(1, 65536), *cur = xcalloc(1, 65536);
	int inflight;
	long long start = now_ns(), stable = start;
	int pn = snapshot(self, prev, 65536, &inflight);
	for (;;) {
		struct timespec ts = { 0, sample };
		nanosleep(&ts, NULL);
		int kbusy = kw_runnable();
		int cn = snapshot(self, cur, 65536, &inflight);
		long long now = now_ns();
		if (cn != pn || memcmp(cur, prev, cn) != 0) {
			char *x = prev;
			prev = cur, cur = x, pn = cn;
			stable = now;
		} else if (!inflight && !kbusy && now - stable >= window) {
			break;
		}
		if (now - start >= maxwait)
			break;
	}
	free(prev);
	free(cur);
}

/* ---- ops ---- */

/* sock_fd returns socket i's open fd, or -1 (EBADF). Caller holds mu. */
int sock_fd_locked(int i) { return i >= 0 && socks[i].fd >= 0 ? socks[i].fd : -1; }

int sock_fd(int i)
{
	pthread_mutex_lock(&mu);
	int fd = sock_fd_locked(i);
	pthread_mutex_unlock(&mu);
	return fd;
}

/* guard_begin makes the op abortable: it keeps a duplicate of the op's
 * socket that the runner's abort steps shut down (so they reach the
 * socket even if the trace closes the fd meanwhile). */
int guard_begin(struct thr *t, int sock, int *fd)
{
	pthread_mutex_lock(&mu);
	*fd = sock_fd_locked(sock);
	int dup = *fd >= 0 ? fcntl(*fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (*fd >= 0 && dup < 0)
		die("dup socket: %s", strerror(errno));
	t->dupfd = dup;
	t->abortable = *fd >= 0;
	pthread_mutex_unlock(&mu);
	return *fd >= 0;
}

void guard_end(struct thr *t)
{
	pthread_mutex_lock(&mu);
	t->abortable = 0;
	if (t->dupfd >= 0)
		close(t->dupfd);
	t->dupfd = -1;
	pthread_mutex_unlock(&mu);
}

/* close_pipe_locked closes socket s's splice pipe; the next splice or
 * pipe op makes a new one. Caller holds mu. */
void close_pipe_locked(struct sock *s)
{
	if (s->pipe_r >= 0) {
		close(s->pipe_r);
		close(s->pipe_w);
	}
	s->pipe_r = s->pipe_w = -1;
}

/* abort_step runs step k of the abort of thread t's op (the runner timed
 * it out); it returns whether there is a later step. Caller holds mu. */
int abort_step_locked(struct thr *t, int k)
{
	const struct op *o = &ops[t->cur];
	uint64_t one = 1;
	switch (o->kind) {
	case K_SEND:
		if (t->dupfd >= 0)
			shutdown(t->dupfd, k == 0 ? SHUT_WR : SHUT_RDWR);
		return k == 0;
	case K_RECV:
		if (t->dupfd >= 0)
			shutdown(t->dupfd, k == 0 ? SHUT_RD : SHUT_RDWR);
		return k == 0;
	case K_SPLICE:
		if (k == 1)
			close_pipe_locked(&socks[o->a]); /* a splice waiting for pipe space gets -EPIPE */
		else if (t->dupfd >= 0) {
			shutdown(t->dupfd, k == 0 ? SHUT_RD : SHUT_RDWR);
		}
		return k < 2;
	case K_SLEEP:
	case K_IOCOPY:
		if (write(t->efd, &one, sizeof(one)) < 0)
			die("eventfd: %s", strerror(errno));
		return 0;
	default:
		return 0;
	}
}

/* ---- `conn A B pair`: the loopback-splice RFC's sock_ops pairing ---- */

/* The pairing machinery (kernelshim/pair.go): a sock_ops program attached
 * to a cgroup of this process's own, which the process enters only while
 * a `conn A B pair` creates its sockets. At both ESTABLISHED callbacks the
 * RFC's program inserts the socket into a rendezvous sockhash, looks up
 * its peer and calls bpf_sock_splice_pair(peer, skops); the module's
 * calls bpf_tcp_splice_pair(skops). Each records the stage it reached and
 * the return value in the results hash by socket cookie. */
static struct {
	int prog_fd, rendezvous_fd, results_fd, cg_fd;
	uint32_t kfunc_id;
	char cg_dir[3100], cg_orig[3000];
} pairing = { .prog_fd = -1, .rendezvous_fd = -1, .results_fd = -1, .cg_fd = -1 };

/* btf_types walks the BTF file path: with name, it returns the type id of
 * the function so named, or 0; base is vmlinux's BTF for a module's split
 * BTF, whose ids go on from vmlinux's and whose string offsets past
 * vmlinux's strings are its own (NULL for vmlinux). It returns the number
 * of types and the length of the strings in *ntypes and *strlen. */
uint32_t btf_types(const char *path, const char *name, const uint32_t base[2], uint32_t *ntypes, uint32_t *strlen_)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t cap = 1 << 20, len = 0, n;
	unsigned char *b = xcalloc(cap, 1);
	while ((n = fread(b + len, 1, cap - len, f)) > 0)
		if ((len += n) == cap && !(b = realloc(b, cap *= 2)))
			die("out of memory");
	fclose(f);
	uint32_t id = base ? base[0] : 0, found = 0, stroff = base ? base[1] : 0;
	struct { uint16_t magic; uint8_t version, flags; uint32_t hdr_len, type_off, type_len, str_off, str_len; } h;
	if (len < sizeof(h))
		goto out;
	memcpy(&h, b, sizeof(h));
	if (h.magic != 0xeb9f || (size_t)h.hdr_len + h.str_off + h.str_len > len)
		goto out;
	const unsigned char *types = b + h.hdr_len + h.type_off, *end = types + h.type_len;
	const char *strs = (const char *)b + h.hdr_len + h.str_off;
	/* The bytes each kind has after its struct btf_type (12 bytes). */
	for (const unsigned char *p = types; p + 12 <= end;) {
		uint32_t name_off, info;
		memcpy(&name_off, p, 4);
		memcpy(&info, p + 4, 4);
		uint32_t kind = info >> 24 & 0x1f, vlen = info & 0xffff, extra = 0;
		id++;
		switch (kind) {
		case 1: case 14: case 17: extra = 4; break;           /* INT, VAR, DECL_TAG */
		case 3: extra = 12; break;                            /* ARRAY */
		case 4: case 5: case 15: case 19: extra = 12 * vlen; break; /* STRUCT, UNION, DATASEC, ENUM64 */
		case 6: case 13: extra = 8 * vlen; break;             /* ENUM, FUNC_PROTO */
		}
		if (name && !found && kind == 12 && name_off >= stroff && name_off - stroff < h.str_len && /* FUNC */
		    strcmp(strs + (name_off - stroff), name) == 0)
			found = id;
		p += 12 + extra;
	}
	*ntypes = id;
	*strlen_ = stroff + h.str_len;
out:
	free(b);
	return found;
}

/* module_btf_fd returns an fd of the BTF object of kernel module name, or
 * -1 (BPF_BTF_GET_NEXT_ID, BPF_BTF_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD). */
int module_btf_fd(const char *name)
{
	union bpf_attr a;
	uint32_t id = 0;
	for (;;) {
		memset(&a, 0, sizeof(a));
		a.start_id = id;
		if (bpf(BPF_BTF_GET_NEXT_ID, &a) < 0)
			return -1;
		id = a.next_id;
		memset(&a, 0, sizeof(a));
		a.btf_id = id;
		int fd = bpf(BPF_BTF_GET_FD_BY_ID, &a);
		if (fd < 0)
			continue;
		char got[64] = "";
		struct bpf_btf_info info;
		memset(&info, 0, sizeof(info));
		info.name = (uintptr_t)got;
		info.name_len = sizeof(got);
		memset(&a, 0, sizeof(a));
		a.info.bpf_fd = fd;
		a.info.info_len = sizeof(info);
		a.info.info = (uintptr_t)&info;
		if (bpf(BPF_OBJ_GET_INFO_BY_FD, &a) == 0 && strcmp(got, name) == 0)
			return fd;
		close(fd);
	}
}

/* cgroup_move moves the whole process into the cgroup directory dir. */
void cgroup_move(const char *dir)
{
	char path[3200], pid[32];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
		die("move into cgroup %s: %s", dir, strerror(errno));
	close(fd);
}

/* cgroup_paths finds the cgroup2 mount and this process's cgroup in it. */
void cgroup_paths(char *orig, size_t len)
{
	char line[4096], mnt[2048] = "", root[2048] = "", self[2048] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - cgroup2 ");
		char r[2048], m[2048];
		if (sep && sscanf(line, "%*s %*s %*s %2047s %2047s", r, m) == 2) {
			strcpy(root, r);
			strcpy(mnt, m);
			break;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0 && sscanf(line + 3, "%2047s", self) == 1)
			break;
	if (f)
		fclose(f);
	size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
	if (!mnt[0] || !self[0] || strncmp(self, root, rl) != 0)
		die("no cgroup2 mount, or this process is outside it (mount %s, root %s, cgroup %s)", mnt, root, self);
	snprintf(orig, len, "%s%s", mnt, strcmp(self + rl, "/") == 0 ? "" : self + rl);
}

/* pairing_cleanup detaches the program and removes the cgroup; it is safe
 * to call twice, and from a signal handler. */
void pairing_cleanup(void)
{
	if (pairing.cg_fd >= 0) {
		if (pairing.prog_fd >= 0)
			prog_attach(BPF_PROG_DETACH, pairing.cg_fd, pairing.prog_fd, BPF_CGROUP_SOCK_OPS);
		close(pairing.cg_fd);
		pairing.cg_fd = -1;
		rmdir(pairing.cg_dir);
	}
}

void on_signal(int sig)
{
	(void)sig;
	if (pairing.cg_orig[0]) {
		char path[3200], pid[32];
		snprintf(path, sizeof(path), "%s/cgroup.procs", pairing.cg_orig);
		snprintf(pid, sizeof(pid), "%d", getpid());
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t w = write(fd, pid, strlen(pid));
			(void)w; /* nothing more to do in a handler */
			close(fd);
		}
	}
	pairing_cleanup();
	_exit(130);
}

int map_create(int type, int key, int value, int entries, const char *name)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = key;
	a.value_size = value;
	a.max_entries = entries;
	snprintf(a.map_name, sizeof(a.map_name), "%s", name);
	return bpf(BPF_MAP_CREATE, &a);
}

/* pairing_setup loads and attaches pairing program kind; id is the BTF id
 * of its kfunc, btf_fd the module BTF's fd (PAIR_MODULE) or -1. */
void pairing_setup(int kind, uint32_t id, int btf_fd)
{
	const struct pairprog *pp = &pair_progs[kind];
	pairing.results_fd = map_create(BPF_MAP_TYPE_HASH, 8, 8, 256, "repro_pairres");
	if (kind == PAIR_RFC)
		pairing.rendezvous_fd = map_create(BPF_MAP_TYPE_SOCKHASH, 16, 4, 256, "repro_rendez");
	if (pairing.results_fd < 0 || (kind == PAIR_RFC && pairing.rendezvous_fd < 0))
		die("pairing maps: %s", strerror(errno));
	struct bpf_insn *insns = xcalloc(pp->n, sizeof(*insns));
	memcpy(insns, pp->insns, pp->n * sizeof(*insns));
	for (int i = 0; i < pp->nholes; i++)
		insns[pp->holes[i].insn].imm = pp->holes[i].what == HOLE_RENDEZVOUS ? pairing.rendezvous_fd
					       : pp->holes[i].what == HOLE_RESULTS  ? pairing.results_fd
										    : (int)id;
	int fd_array[2] = { 0, btf_fd };
	static char log[65536];
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SOCK_OPS;
	a.expected_attach_type = BPF_CGROUP_SOCK_OPS;
	a.insns = (uintptr_t)insns;
	a.insn_cnt = pp->n;
	a.license = (uintptr_t) "GPL";
	if (btf_fd >= 0)
		a.fd_array = (uintptr_t)fd_array;
	a.log_buf = (uintptr_t)log, a.log_size = sizeof(log), a.log_level = 1;
	snprintf(a.prog_name, sizeof(a.prog_name), "repro_pair");
	if ((pairing.prog_fd = bpf(BPF_PROG_LOAD, &a)) < 0)
		die("load the pairing program: %s\n%s", strerror(errno), log);
	free(insns);
	if (btf_fd >= 0)
		close(btf_fd);
	cgroup_paths(pairing.cg_orig, sizeof(pairing.cg_orig));
	/* Leftovers of killed reproducers: rmdir fails on one in use. */
	DIR *d = opendir(pairing.cg_orig);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int pid;
		if (sscanf(e->d_name, "splicecheck-repro-%d", &pid) == 1 && kill(pid, 0) < 0 && errno == ESRCH) {
			char path[3400];
			snprintf(path, sizeof(path), "%s/%s", pairing.cg_orig, e->d_name);
			rmdir(path);
		}
	}
	if (d)
		closedir(d);
	snprintf(pairing.cg_dir, sizeof(pairing.cg_dir), "%s/splicecheck-repro-%d", pairing.cg_orig, getpid());
	if (mkdir(pairing.cg_dir, 0755) < 0)
		die("mkdir %s: %s", pairing.cg_dir, strerror(errno));
	atexit(pairing_cleanup);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if ((pairing.cg_fd = open(pairing.cg_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    prog_attach(BPF_PROG_ATTACH, pairing.cg_fd, pairing.prog_fd, BPF_CGROUP_SOCK_OPS) < 0) {
		int err = errno;
		pairing_cleanup();
		die("attach the pairing program to %s: %s", pairing.cg_dir, strerror(err));
	}
}

/* pair_result waits until both ends' ESTABLISHED callbacks have recorded
 * what they did (at most 10000 times 200 us) and returns the op's result:
 * the first -errno of A's then B's record, else ok when the kfunc was
 * called, else -ENOENT (the ends never found each other). */
struct result pair_result(int afd, int bfd)
{
	struct { uint32_t stage; int32_t ret; } got[2] = { { 0, 0 }, { 0, 0 } };
	uint64_t cookies[2];
	int fds[2] = { afd, bfd };
	for (int i = 0; i < 2; i++) {
		socklen_t l = sizeof(cookies[i]);
		if (getsockopt(fds[i], SOL_SOCKET, SO_COOKIE, &cookies[i], &l) < 0)
			die("SO_COOKIE: %s", strerror(errno));
	}
	for (int try = 0;; try++) {
		int all = 1;
		for (int i = 0; i < 2; i++) {
			if (got[i].stage)
				continue;
			union bpf_attr a;
			memset(&a, 0, sizeof(a));
			a.map_fd = pairing.results_fd;
			a.key = (uintptr_t)&cookies[i];
			a.value = (uintptr_t)&got[i];
			if (bpf(BPF_MAP_LOOKUP_ELEM, &a) < 0) {
				if (errno != ENOENT)
					die("read the pairing result: %s", strerror(errno));
				all = 0;
			}
		}
		if (all)
			break;
		if (try == 10000)
			return r_timeout();
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
	int called = 0;
	for (int i = 0; i < 2; i++) {
		union bpf_attr a;
		memset(&a, 0, sizeof(a));
		a.map_fd = pairing.results_fd;
		a.key = (uintptr_t)&cookies[i];
		bpf(BPF_MAP_DELETE_ELEM, &a);
	}
	for (int i = 0; i < 2; i++) {
		if (got[i].ret < 0)
			return r_fail(-got[i].ret);
		called |= got[i].stage == 3;
	}
	return called ? r_ok() : r_fail(ENOENT);
}

struct result do_conn(struct thr *t, const struct op *o)
{
	(void)t;
	int paired = (o->flags & F_PAIR) && pairing.prog_fd >= 0;
	if (paired)
		cgroup_move(pairing.cg_dir);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err = errno;
	int afd = lfd < 0 ? -1 : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), bfd = -1;
	if (lfd >= 0)
		err = afd < 0 ? errno : 0;
	if (paired)
		cgroup_move(pairing.cg_orig);
	if (err) {
		if (lfd >= 0)
			close(lfd);
		return r_fail(err);
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
		err = errno;
	while (!err && connect(afd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		if (errno != EINTR)
			err = errno;
	while (!err && (bfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		if (errno != EINTR)
			err = errno;
	close(lfd);
	if (err) {
		close(afd);
		return r_fail(err);
	}
	pthread_mutex_lock(&mu);
	socks[o->a].fd = afd;
	socks[o->b].fd = bfd;
	pthread_mutex_unlock(&mu);
	if (!(o->flags & F_PAIR))
		return r_ok();
	if (!paired)
		return r_fail(EOPNOTSUPP); /* no pairing kfunc: nothing was inserted anywhere */
	return pair_result(afd, bfd);
}

long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

struct result do_map(const struct op *o)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = o->maptype;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = o->size;
	snprintf(a.map_name, sizeof(a.map_name), "repro_%s", map_names[o->map]);
	int fd = bpf(BPF_MAP_CREATE, &a);
	pthread_mutex_lock(&mu);
	maps[o->map].fd = fd;
	pthread_mutex_unlock(&mu);
	return fd < 0 ? r_fail(errno) : r_ok();
}

int map_fd(int m)
{
	pthread_mutex_lock(&mu);
	int fd = m >= 0 ? maps[m].fd : -1;
	pthread_mutex_unlock(&mu);
	return fd;
}

int load_prog(int type, const struct bpf_insn *insns, int n, const char *name)
{
	static char log[65536];
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = type;
	a.insns = (uintptr_t)insns;
	a.insn_cnt = n;
	a.license = (uintptr_t) "GPL";
	a.log_buf = (uintptr_t)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	snprintf(a.prog_name, sizeof(a.prog_name), "%s", name);
	int fd = bpf(BPF_PROG_LOAD, &a);
	if (fd < 0) {
		/* Without the log when the log is what failed. */
		int err = errno;
		a.log_buf = 0, a.log_size = 0, a.log_level = 0;
		fd = bpf(BPF_PROG_LOAD, &a);
		if (fd < 0)
			die("load %s: %s\n%s", name, strerror(err), log);
	}
	return fd;
}

int prog_attach(int cmd, int target, int prog, int type)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.target_fd = target;
	a.attach_bpf_fd = prog;
	a.attach_type = type;
	return bpf(cmd, &a);
}

/* detach_all detaches (newest first) and closes map m's programs.
 * Caller holds mu. */
void detach_all_locked(struct bmap *m)
{
	for (int i = m->nprogs - 1; i >= 0; i--) {
		prog_attach(BPF_PROG_DETACH, m->fd, m->progs[i], m->attach[i]);
		close(m->progs[i]);
	}
	m->nprogs = 0;
}

struct result do_prog(const struct op *o)
{
	int mfd = map_fd(o->map);
	if (mfd < 0)
		return r_fail(EBADF);
	const struct prog *p = &progs[o->prog];
	struct bmap got = { .fd = mfd };
	struct bpf_insn *v = xcalloc(p->nverdict, sizeof(*v));
	memcpy(v, p->verdict, p->nverdict * sizeof(*v));
	if (p->mapinsn >= 0)
		v[p->mapinsn].imm = mfd;
	struct { const struct bpf_insn *insns; int n, type, attach; const char *name; } specs[2];
	int ns = 0;
	if (p->parser)
		specs[ns++] = (typeof(specs[0])){ p->parser, p->nparser, p->type, BPF_SK_SKB_STREAM_PARSER, "repro_parser" };
	specs[ns++] = (typeof(specs[0])){ v, p->nverdict, p->type, p->attach, "repro_verdict" };
	for (int i = 0; i < ns; i++) {
		int fd = load_prog(specs[i].type, specs[i].insns, specs[i].n, specs[i].name);
		if (prog_attach(BPF_PROG_ATTACH, mfd, fd, specs[i].attach) < 0) {
			int err = errno;
			close(fd);
			detach_all_locked(&got);
			free(v);
			return r_fail(err);
		}
		got.progs[got.nprogs] = fd, got.attach[got.nprogs++] = specs[i].attach;
	}
	free(v);
	pthread_mutex_lock(&mu);
	struct bmap *m = &maps[o->map];
	for (int i = 0; i < got.nprogs; i++) {
		if (m->nprogs == MAX_PROGS)
			die("line %d: more than %d programs on map %s", o->line, MAX_PROGS, map_names[o->map]);
		m->progs[m->nprogs] = got.progs[i], m->attach[m->nprogs++] = got.attach[i];
	}
	pthread_mutex_unlock(&mu);
	return r_ok();
}

struct result do_insert(const struct op *o)
{
	int mfd = map_fd(o->map);
	if (mfd < 0)
		return r_fail(EBADF);
	pthread_mutex_lock(&mu); /* the socket's fd stays open through the update */
	int fd = sock_fd_locked(o->a), err = 0;
	if (fd < 0) {
		pthread_mutex_unlock(&mu);
		return r_fail(EBADF);
	}
	uint32_t key = o->key, val = fd;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = mfd;
	a.key = (uintptr_t)&key;
	a.value = (uintptr_t)&val;
	a.flags = BPF_ANY;
	if (bpf(BPF_MAP_UPDATE_ELEM, &a) < 0)
		err = errno;
	pthread_mutex_unlock(&mu);
	return err ? r_fail(err) : r_ok();
}

struct result do_delete(const struct op *o)
{
	int mfd = map_fd(o->map);
	if (mfd < 0)
		return r_fail(EBADF);
	uint32_t key = o->key;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = mfd;
	a.key = (uintptr_t)&key;
	return bpf(BPF_MAP_DELETE_ELEM, &a) < 0 ? r_fail(errno) : r_ok();
}

struct result do_send(struct thr *t, const struct op *o)
{
	int fd;
	if (!guard_begin(t, o->a, &fd))
		return r_fail(EBADF);
	int flags = MSG_NOSIGNAL | (o->flags & F_DONTWAIT ? MSG_DONTWAIT : 0) | (o->flags & F_ZEROCOPY ? MSG_ZEROCOPY : 0);
	long long off;
	pthread_mutex_lock(&mu);
	off = socks[o->a].sent;
	pthread_mutex_unlock(&mu);
	ssize_t n;
	if (o->data || o->size <= PATTERN_CHUNK) {
		const void *p = o->data ? (const void *)o->data : pattern_buf + off % 251;
		long len = o->data ? o->datalen : o->size;
		enter_syscall(t, SYS_sendto);
		while ((n = sendto(fd, p, len, flags, NULL, 0)) < 0 && errno == EINTR)
			;
	} else {
		int niov = (o->size + PATTERN_CHUNK - 1) / PATTERN_CHUNK;
		struct iovec *iov = xcalloc(niov, sizeof(*iov));
		long long left = o->size;
		for (int i = 0; i < niov; i++, left -= PATTERN_CHUNK)
			iov[i] = (struct iovec){ pattern_buf + off % 251, left < PATTERN_CHUNK ? left : PATTERN_CHUNK };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = niov };
		enter_syscall(t, SYS_sendmsg);
		while ((n = sendmsg(fd, &m, flags)) < 0 && errno == EINTR)
			;
		free(iov);
	}
	int err = errno;
	t->phase = PH_BUSY;
	guard_end(t);
	return n < 0 ? r_fail(err) : r_count(n);
}

struct result do_recv(struct thr *t, const struct op *o)
{
	int fd;
	if (!guard_begin(t, o->a, &fd))
		return r_fail(EBADF);
	int flags = (o->flags & F_PEEK ? MSG_PEEK : 0) | (o->flags & F_DONTWAIT ? MSG_DONTWAIT : 0) |
		    (o->flags & F_WAITALL ? MSG_WAITALL : 0);
	unsigned char *buf = xcalloc(o->size, 1);
	ssize_t n;
	enter_syscall(t, SYS_recvfrom);
	while ((n = recvfrom(fd, buf, o->size, flags, NULL, NULL)) < 0 && errno == EINTR)
		;
	int err = errno;
	t->phase = PH_BUSY;
	guard_end(t);
	struct result r = n < 0 ? r_fail(err) : r_data(n, buf);
	free(buf);
	return r;
}

/* ensure_pipe creates socket s's splice pipe on first use: a blocking
 * write end, a non-blocking read end. Caller holds mu. */
int ensure_pipe_locked(struct sock *s)
{
	if (s->pipe_r >= 0)
		return 0;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK) < 0) {
		int err = errno;
		close(p[0]);
		close(p[1]);
		errno = err;
		return -1;
	}
	s->pipe_r = p[0], s->pipe_w = p[1];
	return 0;
}

struct result do_splice(struct thr *t, const struct op *o)
{
	int fd;
	if (!guard_begin(t, o->a, &fd))
		return r_fail(EBADF);
	pthread_mutex_lock(&mu);
	int pw = -1, err = 0;
	if (ensure_pipe_locked(&socks[o->a]) < 0 || (pw = fcntl(socks[o->a].pipe_w, F_DUPFD_CLOEXEC, 0)) < 0)
		err = errno;
	pthread_mutex_unlock(&mu);
	if (err) {
		guard_end(t);
		return r_fail(err);
	}
	ssize_t n;
	enter_syscall(t, SYS_splice);
	while ((n = splice(fd, NULL, pw, NULL, o->size, o->flags & F_NONBLOCK ? SPLICE_F_NONBLOCK : 0)) < 0 && errno == EINTR)
		;
	err = errno;
	t->phase = PH_BUSY;
	guard_end(t);
	close(pw);
	return n < 0 ? r_fail(err) : r_count(n);
}

struct result do_pipe(const struct op *o)
{
	pthread_mutex_lock(&mu);
	struct sock *s = &socks[o->a];
	if (s->fd < 0) {
		pthread_mutex_unlock(&mu);
		return r_fail(EBADF);
	}
	if (ensure_pipe_locked(s) < 0) {
		int err = errno;
		pthread_mutex_unlock(&mu);
		return r_fail(err);
	}
	unsigned char *buf = xcalloc(o->size, 1);
	ssize_t n;
	while ((n = read(s->pipe_r, buf, o->size)) < 0 && errno == EINTR)
		;
	int err = errno;
	pthread_mutex_unlock(&mu);
	struct result r = n < 0 ? r_fail(err) : r_data(n, buf);
	free(buf);
	return r;
}

struct result do_fionread(const struct op *o)
{
	int fd = sock_fd(o->a), n;
	if (fd < 0)
		return r_fail(EBADF);
	return ioctl(fd, SIOCINQ, &n) < 0 ? r_fail(errno) : r_count(n);
}

struct result do_poll(const struct op *o)
{
	static const struct { int bit; const char *name; } names[] = {
		{ POLLIN, "IN" }, { POLLOUT, "OUT" }, { POLLRDHUP, "RDHUP" }, { POLLHUP, "HUP" }, { POLLERR, "ERR" },
	};
	int fd = sock_fd(o->a);
	if (fd < 0)
		return r_fail(EBADF);
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP };
	while (poll(&p, 1, 0) < 0)
		if (errno != EINTR)
			return r_fail(errno);
	char w[64] = "";
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (p.revents & names[i].bit) {
			if (w[0])
				strcat(w, "|");
			strcat(w, names[i].name);
		}
	return r_word(w[0] ? w : "0");
}

struct result do_state(const struct op *o)
{
	static const char *const names[] = {
		NULL, "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
		"CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE",
	};
	int fd = sock_fd(o->a);
	if (fd < 0)
		return r_fail(EBADF);
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0)
		return r_fail(errno);
	if (ti.tcpi_state > 0 && ti.tcpi_state < sizeof(names) / sizeof(names[0]))
		return r_word(names[ti.tcpi_state]);
	char w[32];
	snprintf(w, sizeof(w), "STATE_%u", ti.tcpi_state);
	return r_word(w);
}

struct result do_shutdown(const struct op *o)
{
	int fd = sock_fd(o->a);
	if (fd < 0)
		return r_fail(EBADF);
	return shutdown(fd, o->how) < 0 ? r_fail(errno) : r_ok();
}

/* close_sock closes socket s (SO_LINGER {1, 0} first with rst, so that it
 * sends a RST) and its pipe; it returns the first error. Caller holds mu. */
int close_sock_locked(struct sock *s, int rst)
{
	int err = 0;
	if (s->fd >= 0) {
		struct linger l = { 1, 0 };
		if (rst && setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0)
			err = errno;
		if (close(s->fd) < 0 && !err)
			err = errno;
		s->fd = -1;
	}
	close_pipe_locked(s);
	return err;
}

struct result do_close(const struct op *o)
{
	pthread_mutex_lock(&mu);
	struct sock *s = &socks[o->a];
	int err = s->fd < 0 ? EBADF : close_sock_locked(s, o->flags & F_RST);
	pthread_mutex_unlock(&mu);
	return err ? r_fail(err) : r_ok();
}

struct result do_set(const struct op *o)
{
	pthread_mutex_lock(&mu);
	struct sock *s = &socks[o->a];
	struct result r = r_ok();
	int v = o->size, rc = 0;
	if (s->fd < 0) {
		pthread_mutex_unlock(&mu);
		free(r.word);
		return r_fail(EBADF);
	}
	switch (o->opt) {
	case O_RCVTIMEO: {
		long long ns = o->size * 1000000LL * time_scale;
		struct timeval tv = { ns / NSEC, ns % NSEC / 1000 };
		if ((rc = setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) == 0)
			s->rcvtimeo = ns;
		break;
	}
	case O_NONBLOCKOPT: {
		int fl = fcntl(s->fd, F_GETFL);
		rc = fl < 0 ? -1 : fcntl(s->fd, F_SETFL, v ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
		break;
	}
	case O_BUSYPOLL: rc = setsockopt(s->fd, SOL_SOCKET, SO_BUSY_POLL, &v, sizeof(v)); break;
	case O_RCVBUF: rc = setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)); break;
	case O_SNDBUF: rc = setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)); break;
	case O_PIPESIZE:
		if ((rc = ensure_pipe_locked(s)) == 0 && (rc = fcntl(s->pipe_w, F_SETPIPE_SZ, v)) >= 0) {
			free(r.word);
			r = r_count(rc);
			rc = 0;
		}
		break;
	case O_RXCOPYBREAK: break; /* loopback has no driver: accepted, ignored */
	case O_ZEROCOPYOPT: rc = setsockopt(s->fd, SOL_SOCKET, SO_ZEROCOPY, &v, sizeof(v)); break;
	default: errno = ENOPROTOOPT, rc = -1;
	}
	int err = errno;
	pthread_mutex_unlock(&mu);
	if (rc < 0) {
		free(r.word);
		return r_fail(err);
	}
	return r;
}

struct result do_sleep(struct thr *t, const struct op *o)
{
	struct pollfd p = { .fd = t->efd, .events = POLLIN };
	long long end = now_ns() + o->size * 1000000LL * time_scale;
	pthread_mutex_lock(&mu);
	t->abortable = 1;
	pthread_mutex_unlock(&mu);
	t->phase = PH_SLEEP;
	long long left;
	while ((left = end - now_ns()) > 0) {
		struct timespec ts = { left / NSEC, left % NSEC };
		if (ppoll(&p, 1, &ts, NULL) > 0)
			break; /* the runner's abort: the runner reports the timeout */
	}
	t->phase = PH_BUSY;
	guard_end(t);
	return r_ok();
}

struct result do_errqueue(const struct op *o)
{
	int fd = sock_fd(o->a);
	if (fd < 0)
		return r_fail(EBADF);
	char w[4096] = "";
	int got = 0;
	for (long long i = 0; i < o->size; i++) {
		union { char buf[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6))]; struct cmsghdr align; } u;
		/* One byte of normal data asked for, as Go's unix.Recvmsg does on a
		 * stream socket when it wants only control data: a reader that
		 * returns at once for a zero-length read (the tcp_splice module's)
		 * then answers as for the kernel backend. */
		char dummy;
		struct iovec iov = { &dummy, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
		ssize_t n;
		while ((n = recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT)) < 0 && errno == EINTR)
			;
		if (n < 0 && errno == EAGAIN && got)
			break;
		if (n < 0)
			return r_fail(errno);
		struct sock_extended_err *ee = NULL;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
			    (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR))
				ee = (struct sock_extended_err *)CMSG_DATA(c);
		if (!ee)
			return r_fail(EIO); /* as the kernel backend: a message without one */
		char one[128];
		if (ee->ee_origin == SO_EE_ORIGIN_ZEROCOPY && ee->ee_errno == 0) {
			int k = snprintf(one, sizeof(one), "[%u,%u]", ee->ee_info, ee->ee_data);
			if (ee->ee_code == SO_EE_CODE_ZEROCOPY_COPIED)
				snprintf(one + k, sizeof(one) - k, " copied");
			else if (ee->ee_code)
				snprintf(one + k, sizeof(one) - k, " code %u", ee->ee_code);
		} else {
			snprintf(one, sizeof(one), "origin %u errno %u code %u info %u data %u", ee->ee_origin,
				 ee->ee_errno, ee->ee_code, ee->ee_info, ee->ee_data);
		}
		if (strlen(w) + strlen(one) + 3 >= sizeof(w))
			break;
		if (got++)
			strcat(w, ", ");
		strcat(w, one);
	}
	return r_word(w);
}

/* hold makes socket i non-blocking for an iocopy (the flag belongs to the
 * open file, shared by every thread), saving its flags for the first
 * copy; release puts them back when the last copy ends. Caller holds mu. */
void hold_locked(int i)
{
	struct sock *s = &socks[i];
	if (s->holds++ > 0 && s->hold_fd == s->fd)
		return;
	s->holds = 1;
	s->hold_fd = s->fd;
	s->hold_flags = fcntl(s->fd, F_GETFL);
	fcntl(s->fd, F_SETFL, s->hold_flags | O_NONBLOCK);
}

void release_locked(int i, int fd)
{
	struct sock *s = &socks[i];
	if (s->hold_fd != fd || --s->holds > 0)
		return;
	if (s->fd == fd)
		fcntl(fd, F_SETFL, s->hold_flags);
}

/* wait_fd waits in poll(2) until fd has events, the runner aborts the
 * copy (-1, ETIMEDOUT) or the deadline passes (-1, ETIMEDOUT). The copy's
 * thread is blocked while it sleeps there (do_iocopy). */
int wait_fd(struct thr *t, int fd, short events, long long deadline)
{
	struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = t->efd, .events = POLLIN } };
	for (;;) {
		int ms = -1;
		if (deadline) {
			long long left = deadline - now_ns();
			if (left <= 0)
				return errno = ETIMEDOUT, -1;
			ms = (left + 999999) / 1000000;
		}
		int n = poll(p, 2, ms);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0 && p[1].revents)
			return errno = ETIMEDOUT, -1;
		if (n > 0)
			return 0;
	}
}

/* write_all writes n bytes (from a pipe with splice, or from buf), waiting
 * for space as a Go program's Write does. */
long long write_all(struct thr *t, int dst, int pipe_r, const unsigned char *buf, long long n, int *err)
{
	long long done = 0;
	while (done < n) {
		ssize_t k = pipe_r >= 0 ? splice(pipe_r, NULL, dst, NULL, n - done, SPLICE_F_NONBLOCK)
					: write(dst, buf + done, n - done);
		if (k > 0) {
			done += k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			if (wait_fd(t, dst, POLLOUT, 0) < 0) {
				*err = errno;
				return done;
			}
			continue;
		}
		*err = k < 0 ? errno : EIO;
		return done;
	}
	return done;
}

/* do_iocopy is `iocopy SRC DST [readwrite]` as a Go program's io.Copy of
 * two *net.TCPConn does it on Linux (Go 1.22+): both fds non-blocking;
 * splice(2) from SRC into a pipe of 1 MiB (up to 1 MiB each, with
 * SPLICE_F_NONBLOCK, waiting for readability on EAGAIN), then from the
 * pipe into DST; with readwrite, read(2)/write(2) through 32 KiB. SRC's
 * SO_RCVTIMEO is the copy's read deadline. The result is the byte count,
 * with -ETIMEDOUT at the deadline or the errno of a failed call. */
struct result do_iocopy(struct thr *t, const struct op *o)
{
	pthread_mutex_lock(&mu);
	int src = sock_fd_locked(o->a), dst = sock_fd_locked(o->b);
	if (src < 0 || dst < 0) {
		pthread_mutex_unlock(&mu);
		return r_fail(EBADF);
	}
	long long timeo = socks[o->a].rcvtimeo;
	hold_locked(o->a);
	hold_locked(o->b);
	t->abortable = 1;
	pthread_mutex_unlock(&mu);

	/* For the whole copy, as for a Go thread parked in the netpoller: its
	 * scheduler state is part of every settle's snapshot, and it is
	 * blocked while it sleeps in poll(2). */
	enter_syscall(t, SYS_poll);
	long long deadline = timeo > 0 ? now_ns() + timeo : 0, total = 0;
	int err = 0, p[2] = { -1, -1 };
	unsigned char *buf = NULL;
	if (o->flags & F_READWRITE) {
		buf = xcalloc(32 * 1024, 1);
	} else if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		die("pipe2: %s", strerror(errno));
	} else {
		fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	}
	for (;;) {
		ssize_t n = buf ? read(src, buf, 32 * 1024) : splice(src, NULL, p[1], NULL, 1 << 20, SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (wait_fd(t, src, POLLIN, deadline) < 0) {
				err = errno;
				break;
			}
			continue;
		}
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		total += write_all(t, dst, p[0], buf, n, &err);
		if (err)
			break;
	}
	t->phase = PH_BUSY;
	free(buf);
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	pthread_mutex_lock(&mu);
	t->abortable = 0;
	release_locked(o->a, src);
	release_locked(o->b, dst);
	pthread_mutex_unlock(&mu);
	struct result r = r_count(total);
	r.err = err;
	return r;
}

struct result do_op(struct thr *t, const struct op *o)
{
	switch (o->kind) {
	case K_CONN: return do_conn(t, o);
	case K_MAP: return do_map(o);
	case K_PROG: return do_prog(o);
	case K_INSERT: return do_insert(o);
	case K_DELETE: return do_delete(o);
	case K_PAIR: return r_fail(EOPNOTSUPP); /* bpf_sock_splice_pair: the RFC's only */
	case K_SEND: return do_send(t, o);
	case K_RECV: return do_recv(t, o);
	case K_SPLICE: return do_splice(t, o);
	case K_PIPE: return do_pipe(o);
	case K_IOCOPY: return do_iocopy(t, o);
	case K_FIONREAD: return do_fionread(o);
	case K_POLL: return do_poll(o);
	case K_STATE: return do_state(o);
	case K_SHUTDOWN: return do_shutdown(o);
	case K_CLOSE: return do_close(o);
	case K_SET: return do_set(o);
	case K_SLEEP: return do_sleep(t, o);
	case K_ERRQUEUE: return do_errqueue(o);
	case K_JOIN: break;
	}
	die("line %d: op kind %d not executable", o->line, o->kind);
	return r_ok();
}

/* ---- the runner ---- */

long long op_timeout(void) { return 2 * NSEC * time_scale; }

/* last_before returns the index of thread th's last op before op i, or -1. */
int last_before(int th, int i)
{
	for (int j = i - 1; j >= 0; j--)
		if (ops[j].thread == th)
			return j;
	return -1;
}

void finish(struct thr *t, int i, struct result r)
{
	pthread_mutex_lock(&mu);
	results[i] = r;
	t->running = t->joining = 0;
	t->canceled = 0;
	if (firing == t - thrs)
		firing = -1;
	t->completed++;
	done[i] = 1;
	pthread_cond_broadcast(&done_cond);
	pthread_mutex_unlock(&mu);
}

void *thread_main(void *arg)
{
	struct thr *t = arg;
	t->tid = syscall(SYS_gettid);
	for (;;) {
		pthread_mutex_lock(&mu);
		while (t->qhead == t->qtail)
			pthread_cond_wait(&t->cond, &mu);
		int i = t->queue[t->qhead++];
		const struct op *o = &ops[i];
		long long now = now_ns();
		t->running = 1, t->cur = i;
		t->deadline = now + op_timeout();
		t->blocked_at = now;
		t->joining = o->kind == K_JOIN;
		if (o->kind == K_JOIN) {
			int j = last_before(o->target, i);
			while (j >= 0 && !done[j])
				pthread_cond_wait(&done_cond, &mu);
			pthread_mutex_unlock(&mu);
			finish(t, i, r_ok());
			continue;
		}
		pthread_mutex_unlock(&mu);
		uint64_t drain;
		if (read(t->efd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
			die("eventfd: %s", strerror(errno));
		t->phase = PH_BUSY;
		struct result r = do_op(t, o);
		t->phase = PH_SETTLE;
		settle(t);
		t->phase = PH_IDLE;
		pthread_mutex_lock(&mu);
		int canceled = t->canceled != 0;
		if (!canceled && r.n > 0 && !r.word) {
			if (o->kind == K_SEND)
				socks[o->a].sent += r.n;
			else if (o->kind == K_IOCOPY)
				socks[o->b].sent += r.n;
		}
		pthread_mutex_unlock(&mu);
		if (canceled) {
			free(r.word);
			free(r.data);
			r = r_timeout();
		}
		finish(t, i, r);
	}
	return NULL;
}

void cancel_locked(struct thr *t, long long now)
{
	t->canceled = now;
	firing = t - thrs;
	t->abort_step = 0;
	t->abort_next = now;
}

/* settled reports whether every thread is idle or blocked (with all:
 * whether every op has completed), timing ops out on the way. */
int settled(int all)
{
	pthread_mutex_lock(&mu);
	long long now = now_ns();
	int ok = 1, quiet = 1;
	struct thr *due = NULL;
	for (int i = 0; i < NTHREADS; i++) {
		struct thr *t = &thrs[i];
		if (t->completed == t->dispatched)
			continue;
		ok = 0;
		if (!t->running) {
			quiet = 0;
			continue;
		}
		if (t->canceled) {
			if (now - t->canceled > op_timeout() + 10 * NSEC)
				die("line %d: the op did not return after the runner timed it out", ops[t->cur].line);
			/* The abort steps, 50 ms apart, while the op runs. */
			if (t->abort_step >= 0 && now >= t->abort_next) {
				int more = t->abortable ? abort_step_locked(t, t->abort_step) : 1;
				if (t->abortable)
					t->abort_step = more ? t->abort_step + 1 : -1;
				t->abort_next = now + 50000000LL * time_scale;
			}
		}
		if (t->joining)
			continue;
		int cur = t->cur;
		pthread_mutex_unlock(&mu);
		int b = blocked(t);
		pthread_mutex_lock(&mu);
		if (!t->running || t->cur != cur) {
			quiet = 0; /* it moved on meanwhile: look again */
			continue;
		}
		if (!b) {
			quiet = 0;
			if (!t->canceled && now - t->blocked_at > op_timeout())
				cancel_locked(t, now);
			continue;
		}
		t->blocked_at = now;
		if (!all)
			continue;
		if (!t->canceled && now > t->deadline &&
		    (!due || t->deadline < due->deadline || (t->deadline == due->deadline && t->cur < due->cur)))
			due = t;
	}
	if (all && due && quiet && all_dispatched && firing < 0)
		cancel_locked(due, now);
	pthread_mutex_unlock(&mu);
	return all ? ok : quiet;
}

void run_wait(int all)
{
	long long backoff = 5000;
	while (!settled(all)) {
		struct timespec ts = { 0, backoff };
		nanosleep(&ts, NULL);
		if (backoff < 1000000)
			backoff *= 2;
	}
}

/* ---- set-up and clean-up ---- */

void netns_up(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		die("unshare(CLONE_NEWNET): %s (run as root)", strerror(errno));
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die("SIOCGIFFLAGS lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die("SIOCSIFFLAGS lo: %s", strerror(errno));
	close(s);
}

/* cleanup closes everything the run made: sockets (SO_LINGER {1, 0}, so
 * no orphan outlives the run), pipes, programs (detached) and maps. The
 * namespace goes with the process. */
void cleanup(void)
{
	pthread_mutex_lock(&mu);
	for (int i = 0; i < NSOCKS; i++)
		close_sock_locked(&socks[i], 1);
	for (int i = 0; i < NMAPS; i++)
		if (maps[i].fd >= 0) {
			detach_all_locked(&maps[i]);
			close(maps[i].fd);
			maps[i].fd = -1;
		}
	pthread_mutex_unlock(&mu);
	pairing_cleanup();
}

int main(void)
{
	const char *scale = getenv("SPLICECHECK_TIME_SCALE");
	if (scale && atoi(scale) > 1)
		time_scale = atoi(scale);
	if (geteuid() != 0)
		die("needs root (CAP_SYS_ADMIN for its network namespace, CAP_BPF and CAP_NET_ADMIN for sockmaps)");
	if (uses_pair) {
		/* As kernelshim's detectPair: the RFC's kfunc in vmlinux, else
		 * the tcp_splice module's in its split BTF, else none. */
		uint32_t base[2] = { 0, 0 }, id;
		id = btf_types("/sys/kernel/btf/vmlinux", "bpf_sock_splice_pair", NULL, &base[0], &base[1]);
		if (id) {
			pairing_setup(PAIR_RFC, id, -1);
		} else if (base[0] && (id = btf_types("/sys/kernel/btf/tcp_splice", "bpf_tcp_splice_pair", base, &(uint32_t){ 0 }, &(uint32_t){ 0 }))) {
			int fd = module_btf_fd("tcp_splice");
			if (fd < 0)
				die("the BTF object of module tcp_splice: %s", strerror(errno));
			pairing_setup(PAIR_MODULE, id, fd);
		}
	}
	netns_up();
	pattern_buf = xcalloc(PATTERN_CHUNK + 251, 1);
	for (int i = 0; i < PATTERN_CHUNK + 251; i++)
		pattern_buf[i] = i % 251;
	for (int i = 0; i < NSOCKS; i++)
		socks[i] = (struct sock){ .fd = -1, .pipe_r = -1, .pipe_w = -1, .hold_fd = -1 };
	for (int i = 0; i < NMAPS; i++)
		maps[i].fd = -1;
	int nops[NTHREADS] = { 0 };
	for (int i = 0; i < NOPS; i++)
		nops[ops[i].thread]++;
	for (int i = 0; i < NOPS; i++) {
		struct thr *t = &thrs[ops[i].thread];
		if (t->started)
			continue;
		t->queue = xcalloc(nops[ops[i].thread], sizeof(int));
		t->started = 1;
		t->dupfd = -1;
		t->cur = -1;
		if ((t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			die("eventfd: %s", strerror(errno));
		pthread_cond_init(&t->cond, NULL);
		if (pthread_create(&t->pt, NULL, thread_main, t) != 0)
			die("pthread_create failed");
		while (!__atomic_load_n(&t->tid, __ATOMIC_SEQ_CST))
			sched_yield();
	}
	for (int i = 0; i < NOPS; i++) {
		struct thr *t = &thrs[ops[i].thread];
		pthread_mutex_lock(&mu);
		t->dispatched++;
		t->queue[t->qtail++] = i;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&mu);
		run_wait(0);
	}
	pthread_mutex_lock(&mu);
	all_dispatched = 1;
	long long deadline = now_ns() + op_timeout();
	for (int i = 0; i < NTHREADS; i++)
		if (thrs[i].running && !thrs[i].joining && !thrs[i].canceled)
			thrs[i].deadline = deadline;
	pthread_mutex_unlock(&mu);
	run_wait(1);
	cleanup();
	for (int i = 0; i < NOPS; i++)
		print_result(stdout, &ops[i], &results[i]);
	fflush(stdout);
	return 0;
}
