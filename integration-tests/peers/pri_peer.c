/*
 * The far end of trunkgate's E1 tests: Debian's libpri (a real ISDN PRI stack, GPL) on a
 * trunkgate software span. A test peer only: the test harness builds it, trunkgate never links
 * it.
 *
 * It connects to the span's D-channel socket (SPAN/d, SOCK_SEQPACKET, one LAPD frame per
 * message without FCS) and talks Q.921/Q.931 through libpri's callbacks (libpri's frames carry
 * two FCS octets: they are added on read and dropped on write). Once a call is answered it
 * connects to the call's B-channel socket (SPAN/bN), sends the A-law of --play every 20 ms
 * (silence after it) and writes what it hears to --record.
 *
 * It prints one line per event on stdout for the harness to wait on:
 *   up, down, ring channel=N called=X calling=Y, proceeding, ringing, progress, answer,
 *   connect_ack, hangup cause=N, hangup_ack cause=N, restart channel=N, restart_ack channel=N,
 *   "done calls=N ms=T" once its calls are over (and exits 0), or "timeout" (exits 1).
 *
 *   pri_peer --side nt|cpe --span DIR [--call NUMBER [--channel N] [--calls N]]
 *            [--answer | --busy]
 *            [--ring-ms N] [--play FILE] [--record FILE] [--talk-ms N] [--restart-after-ms N]
 *            [--timeout-ms N] [--debug]
 */
#include <errno.h>
#include <fcntl.h>
#include <libpri.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define FRAME_BYTES 160 /* 20 ms of A-law */
#define ALAW_SILENCE 0xd5

static const char *span_dir;
static int dchan = -1;
static int bchan = -1;
static q931_call *call;
static int channel;
static FILE *play, *record;
static long long answered_at = -1, rang_at = -1, next_frame = -1;
static long long talk_ms = 0, ring_ms = 0, restart_after_ms = -1;
static int answer, busy, restarted;
/* --calls N: place N calls one after the other (each ends before the next starts). */
static const char *number;
static int calls_wanted = 1, calls_done, call_channel = 1;
static long long first_setup_at = -1;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void die(const char *what)
{
	fprintf(stderr, "pri_peer: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int connect_seqpacket(const char *name)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (fd < 0)
		die("socket");
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", span_dir, name);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die(addr.sun_path);
	return fd;
}

static int read_frame(struct pri *pri, void *buf, int len)
{
	(void)pri;
	int n = recv(dchan, buf, len - 2, 0);
	if (n <= 0) {
		say("down");
		exit(n == 0 ? 3 : 2);
	}
	memset((char *)buf + n, 0, 2); /* the FCS libpri expects and ignores */
	return n + 2;
}

static int write_frame(struct pri *pri, void *buf, int len)
{
	(void)pri;
	if (send(dchan, buf, len - 2, 0) < 0)
		die("send on the D-channel");
	return len;
}

static void log_libpri(struct pri *pri, char *s)
{
	(void)pri;
	fputs(s, stderr);
}

static void start_media(void)
{
	char name[16];
	snprintf(name, sizeof(name), "b%d", channel);
	bchan = connect_seqpacket(name);
	fcntl(bchan, F_SETFL, O_NONBLOCK);
	answered_at = now_ms();
	next_frame = answered_at;
}

static void media(void)
{
	unsigned char out[FRAME_BYTES], in[2048];
	if (bchan < 0)
		return;
	for (;;) {
		int n = recv(bchan, in, sizeof(in), 0);
		if (n <= 0)
			break;
		if (record)
			fwrite(in, 1, n, record);
	}
	while (next_frame <= now_ms()) {
		size_t got = play ? fread(out, 1, FRAME_BYTES, play) : 0;
		memset(out + got, ALAW_SILENCE, FRAME_BYTES - got);
		send(bchan, out, FRAME_BYTES, MSG_DONTWAIT);
		next_frame += 20;
	}
}

static void end_media(void)
{
	if (bchan >= 0)
		close(bchan);
	bchan = -1;
	if (record)
		fflush(record);
}

static void place_call(struct pri *pri)
{
	struct pri_sr *sr = pri_sr_new();
	call = pri_new_call(pri);
	channel = call_channel;
	pri_sr_set_channel(sr, channel, 1, 0);
	pri_sr_set_bearer(sr, PRI_TRANS_CAP_SPEECH, PRI_LAYER_1_ALAW);
	pri_sr_set_called(sr, (char *)number, PRI_UNKNOWN, 1);
	pri_sr_set_caller(sr, "0201234567", "Lab", PRI_NATIONAL_ISDN,
			  PRES_ALLOWED_USER_NUMBER_NOT_SCREENED);
	if (pri_setup(pri, call, sr))
		die("pri_setup");
	pri_sr_free(sr);
	if (first_setup_at < 0)
		first_setup_at = now_ms();
	say("setup channel=%d called=%s", channel, number);
}

/* A call has ended: the next one, or done (with how long the calls took). */
static void call_over(struct pri *pri)
{
	answered_at = -1;
	if (++calls_done < calls_wanted && number) {
		place_call(pri);
		return;
	}
	say("done calls=%d ms=%lld", calls_done, first_setup_at < 0 ? 0 : now_ms() - first_setup_at);
	exit(0);
}

static void handle(struct pri *pri, pri_event *e)
{
	switch (e->e) {
	case PRI_EVENT_DCHAN_UP:
		say("up");
		break;
	case PRI_EVENT_DCHAN_DOWN:
		say("down");
		break;
	case PRI_EVENT_RING:
		call = e->ring.call;
		channel = e->ring.channel & 0xff;
		say("ring channel=%d called=%s calling=%s name=%s", channel, e->ring.callednum,
		    e->ring.callingnum, e->ring.callingname);
		if (busy) {
			/* As a network does: the call is taken, then cleared (libpri sends nothing for a
			 * hang-up before any answer to the SETUP). */
			pri_proceeding(pri, call, e->ring.channel, 0);
			pri_hangup(pri, call, PRI_CAUSE_USER_BUSY);
		} else if (answer) {
			pri_proceeding(pri, call, e->ring.channel, 0);
			pri_acknowledge(pri, call, e->ring.channel, 0);
			rang_at = now_ms();
		}
		break;
	case PRI_EVENT_PROCEEDING:
		channel = e->proceeding.channel & 0xff;
		say("proceeding channel=%d", channel);
		break;
	case PRI_EVENT_RINGING:
		say("ringing");
		break;
	case PRI_EVENT_PROGRESS:
		say("progress");
		break;
	case PRI_EVENT_ANSWER:
		channel = e->answer.channel & 0xff;
		say("answer channel=%d", channel);
		start_media();
		break;
	case PRI_EVENT_CONNECT_ACK:
		say("connect_ack");
		break;
	case PRI_EVENT_HANGUP:
		/* RELEASE (or RELEASE COMPLETE) came: our answer ends the call. */
		say("hangup cause=%d", e->hangup.cause);
		end_media();
		pri_hangup(pri, e->hangup.call, e->hangup.cause);
		call_over(pri);
		break;
	case PRI_EVENT_HANGUP_REQ:
		say("hangup cause=%d", e->hangup.cause);
		end_media();
		pri_hangup(pri, e->hangup.call, e->hangup.cause);
		break;
	case PRI_EVENT_HANGUP_ACK:
		say("hangup_ack cause=%d", e->hangup.cause);
		end_media();
		call = NULL;
		call_over(pri);
		break;
	case PRI_EVENT_RESTART:
		say("restart channel=%d", e->restart.channel & 0xff);
		break;
	case PRI_EVENT_RESTART_ACK:
		say("restart_ack channel=%d", e->restartack.channel & 0xff);
		if (restarted) {
			say("done");
			exit(0);
		}
		break;
	default:
		break;
	}
}

int main(int argc, char **argv)
{
	const char *side = NULL;
	long long timeout_ms = 30000;
	int debug = 0;
	channel = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
		if (OPT("--side"))
			side = v;
		else if (OPT("--span"))
			span_dir = v;
		else if (OPT("--call"))
			number = v;
		else if (OPT("--channel"))
			call_channel = atoi(v);
		else if (OPT("--calls"))
			calls_wanted = atoi(v);
		else if (OPT("--ring-ms"))
			ring_ms = atoll(v);
		else if (OPT("--talk-ms"))
			talk_ms = atoll(v);
		else if (OPT("--restart-after-ms"))
			restart_after_ms = atoll(v);
		else if (OPT("--timeout-ms"))
			timeout_ms = atoll(v);
		else if (OPT("--play")) {
			if (!(play = fopen(v, "rb")))
				die(v);
		} else if (OPT("--record")) {
			if (!(record = fopen(v, "wb")))
				die(v);
		} else if (!strcmp(a, "--answer"))
			answer = 1;
		else if (!strcmp(a, "--busy"))
			busy = 1;
		else if (!strcmp(a, "--debug"))
			debug = 1;
		else {
			fprintf(stderr, "pri_peer: unknown argument %s\n", a);
			return 2;
		}
	}
	if (!side || !span_dir || (strcmp(side, "nt") && strcmp(side, "cpe"))) {
		fprintf(stderr, "usage: pri_peer --side nt|cpe --span DIR [...]\n");
		return 2;
	}
	dchan = connect_seqpacket("d");
	pri_set_message(log_libpri);
	pri_set_error(log_libpri);
	struct pri *pri = pri_new_cb(dchan, strcmp(side, "nt") ? PRI_CPE : PRI_NETWORK,
				     PRI_SWITCH_EUROISDN_E1, read_frame, write_frame, NULL);
	if (!pri)
		die("pri_new_cb");
	if (debug)
		pri_set_debug(pri, PRI_DEBUG_Q921_STATE | PRI_DEBUG_Q931_DUMP | PRI_DEBUG_Q931_STATE);
	long long deadline = now_ms() + timeout_ms;
	int up = 0;
	for (;;) {
		long long now = now_ms();
		if (now >= deadline) {
			say("timeout");
			return 1;
		}
		long long wait = deadline - now;
		struct timeval *next = pri_schedule_next(pri);
		if (next) {
			struct timeval tv;
			gettimeofday(&tv, NULL);
			long long until = (next->tv_sec - tv.tv_sec) * 1000 + (next->tv_usec - tv.tv_usec) / 1000;
			if (until < wait)
				wait = until < 0 ? 0 : until;
		}
		if (bchan >= 0 && wait > 5)
			wait = 5;
		if (rang_at >= 0 && wait > 5)
			wait = 5;
		struct pollfd pfd = { .fd = dchan, .events = POLLIN };
		int ready = poll(&pfd, 1, (int)wait);
		pri_event *e = NULL;
		if (ready > 0)
			e = pri_check_event(pri);
		else
			e = pri_schedule_run(pri);
		if (e) {
			if (e->e == PRI_EVENT_DCHAN_UP && !up) {
				up = 1;
				handle(pri, e);
				if (number)
					place_call(pri);
			} else {
				handle(pri, e);
			}
		}
		now = now_ms();
		if (rang_at >= 0 && now >= rang_at + ring_ms) {
			rang_at = -1;
			pri_answer(pri, call, channel, 0);
			say("answered channel=%d", channel);
			start_media();
		}
		media();
		if (answered_at >= 0 && restart_after_ms >= 0 && now >= answered_at + restart_after_ms &&
		    !restarted) {
			restarted = 1;
			end_media();
			pri_reset(pri, channel);
			say("restarting channel=%d", channel);
		}
		if (answered_at >= 0 && talk_ms > 0 && now >= answered_at + talk_ms && call &&
		    bchan >= 0) {
			end_media();
			pri_hangup(pri, call, PRI_CAUSE_NORMAL_CLEARING);
			say("hanging up");
		}
	}
}
