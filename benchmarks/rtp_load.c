/* rtp_load: the lean RTP load generator of benchmarks/bench_media.py, in C.
 *
 * The Python generator (bench_media_load.py) needs about half a core to send and receive
 * 50,000 packets/s, which on a 2-core machine competes with the engine it measures. This one
 * does the same job with sendmmsg/recvmmsg batches from one UDP socket on 127.0.0.1.
 *
 * Protocol (stdin/stdout, one line each):
 *   out:  "<port>\n"                                   once the socket is bound
 *   in:   "<seconds> <out_path> <n> <port_1> ... <port_n>\n"
 *   then: streams 20 ms PCMA packets to the n ports (phases spread over 20 slots of 1 ms, as
 *         the engine does), records every arrival (kernel SO_TIMESTAMPNS wall clock, SSRC,
 *         sequence number) until <seconds> have passed, writes the records to <out_path>
 *         as three arrays (float64 arrival[k], uint32 ssrc[k], uint32 seq[k]) and prints
 *   out:  "<records> <packets_sent> <cpu_s> <wall_s> <rcvbuf>\n"
 *
 * Build: cc -O2 -o rtp_load rtp_load.c  (bench_media.py does this into a temporary directory;
 * without a C compiler it falls back to the Python generator).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 20
#define BATCH 64
#define PAYLOAD 160
#define PACKET (12 + PAYLOAD)

static double monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 + usage.ru_stime.tv_sec +
           usage.ru_stime.tv_usec * 1e-6;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(void) {
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    if (sock < 0) die("socket");
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = 0};
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(sock, (struct sockaddr *)&local, sizeof local) < 0) die("bind");
    int size = 64 << 20, on = 1, sndbuf = 8 << 20;
    if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (setsockopt(sock, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0) die("timestamps");
    socklen_t length = sizeof local;
    getsockname(sock, (struct sockaddr *)&local, &length);
    printf("%d\n", ntohs(local.sin_port));
    fflush(stdout);

    double seconds;
    char out_path[4096];
    int count;
    if (scanf("%lf %4095s %d", &seconds, out_path, &count) != 3 || count < 0) {
        fprintf(stderr, "rtp_load: bad command line on stdin\n");
        return 2;
    }
    struct sockaddr_in *targets = calloc(count ? count : 1, sizeof *targets);
    uint16_t *sequence = calloc(count ? count : 1, sizeof *sequence);
    uint32_t *timestamp = calloc(count ? count : 1, sizeof *timestamp);
    for (int i = 0; i < count; i++) {
        int port;
        if (scanf("%d", &port) != 1) {
            fprintf(stderr, "rtp_load: expected %d ports\n", count);
            return 2;
        }
        targets[i].sin_family = AF_INET;
        targets[i].sin_port = htons(port);
        targets[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }

    size_t capacity = 1 << 20, records = 0;
    double *arrival = malloc(capacity * sizeof *arrival);
    uint32_t *ssrcs = malloc(capacity * sizeof *ssrcs);
    uint32_t *seqs = malloc(capacity * sizeof *seqs);

    static unsigned char out_packets[BATCH][PACKET];
    static struct mmsghdr out_msgs[BATCH];
    static struct iovec out_iov[BATCH];
    static unsigned char in_packets[BATCH][256];
    static char in_control[BATCH][64];
    static struct mmsghdr in_msgs[BATCH];
    static struct iovec in_iov[BATCH];
    for (int i = 0; i < BATCH; i++) {
        memset(out_packets[i] + 12, 0xd5, PAYLOAD);
        out_iov[i].iov_base = out_packets[i];
        out_iov[i].iov_len = PACKET;
        out_msgs[i].msg_hdr.msg_iov = &out_iov[i];
        out_msgs[i].msg_hdr.msg_iovlen = 1;
        out_msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
        in_iov[i].iov_base = in_packets[i];
        in_iov[i].iov_len = sizeof in_packets[i];
    }

    long sent = 0;
    double cpu_start = cpu_seconds();
    double start = monotonic(), deadline = start + seconds, slot_s = 0.02 / SLOTS;
    long tick = 0;
    int slot = 0;
    for (;;) {
        double now = monotonic();
        if (now >= deadline) break;
        double timeout = 0.05;
        if (count) {
            double due = start + tick * 0.02 + slot * slot_s;
            while (due <= now) {
                int batched = 0;
                for (int index = slot; index < count; index += SLOTS) {
                    unsigned char *p = out_packets[batched];
                    uint32_t ssrc = 0x10000 + index;
                    p[0] = 0x80;
                    p[1] = 8;
                    p[2] = sequence[index] >> 8;
                    p[3] = sequence[index] & 0xff;
                    uint32_t ts = htonl(timestamp[index]), ss = htonl(ssrc);
                    memcpy(p + 4, &ts, 4);
                    memcpy(p + 8, &ss, 4);
                    out_msgs[batched].msg_hdr.msg_name = &targets[index];
                    sequence[index]++;
                    timestamp[index] += PAYLOAD;
                    if (++batched == BATCH) {
                        int done = sendmmsg(sock, out_msgs, batched, 0);
                        if (done > 0) sent += done;
                        batched = 0;
                    }
                }
                if (batched) {
                    int done = sendmmsg(sock, out_msgs, batched, 0);
                    if (done > 0) sent += done;
                }
                if (++slot == SLOTS) {
                    slot = 0;
                    tick++;
                }
                due = start + tick * 0.02 + slot * slot_s;
            }
            timeout = due - monotonic();
        } else if (deadline - now < timeout) {
            timeout = deadline - now;
        }
        if (timeout < 0) timeout = 0;
        struct timespec wait = {(time_t)timeout, (long)((timeout - (time_t)timeout) * 1e9)};
        struct pollfd fd = {.fd = sock, .events = POLLIN};
        if (ppoll(&fd, 1, &wait, NULL) <= 0) continue;
        for (;;) {
            for (int i = 0; i < BATCH; i++) {
                in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
                in_msgs[i].msg_hdr.msg_iovlen = 1;
                in_msgs[i].msg_hdr.msg_control = in_control[i];
                in_msgs[i].msg_hdr.msg_controllen = sizeof in_control[i];
                in_msgs[i].msg_hdr.msg_name = NULL;
            }
            int got = recvmmsg(sock, in_msgs, BATCH, MSG_DONTWAIT, NULL);
            if (got <= 0) break;
            for (int i = 0; i < got; i++) {
                if (in_msgs[i].msg_len < 12) continue;
                double when = 0;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&in_msgs[i].msg_hdr); c;
                     c = CMSG_NXTHDR(&in_msgs[i].msg_hdr, c)) {
                    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                        struct timespec ts;
                        memcpy(&ts, CMSG_DATA(c), sizeof ts);
                        when = ts.tv_sec + ts.tv_nsec * 1e-9;
                    }
                }
                if (records == capacity) {
                    capacity *= 2;
                    arrival = realloc(arrival, capacity * sizeof *arrival);
                    ssrcs = realloc(ssrcs, capacity * sizeof *ssrcs);
                    seqs = realloc(seqs, capacity * sizeof *seqs);
                    if (!arrival || !ssrcs || !seqs) die("realloc");
                }
                unsigned char *p = in_packets[i];
                uint32_t ss;
                memcpy(&ss, p + 8, 4);
                arrival[records] = when;
                ssrcs[records] = ntohl(ss);
                seqs[records] = ((uint32_t)p[2] << 8) | p[3];
                records++;
            }
            if (got < BATCH) break;
        }
    }
    double cpu = cpu_seconds() - cpu_start, wall = monotonic() - start;
    FILE *out = fopen(out_path, "wb");
    if (!out) die("open output");
    fwrite(arrival, sizeof *arrival, records, out);
    fwrite(ssrcs, sizeof *ssrcs, records, out);
    fwrite(seqs, sizeof *seqs, records, out);
    fclose(out);
    int rcvbuf = 0;
    socklen_t optlen = sizeof rcvbuf;
    getsockopt(sock, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &optlen);
    printf("%zu %ld %.6f %.6f %d\n", records, sent, cpu, wall, rcvbuf);
    fflush(stdout);
    close(sock);
    return 0;
}
