/*
 * load SECONDS THREADS: the LTTng-UST side of scripts/load-compare. Each
 * thread fires load:event (int32, int64, "hello") as fast as it can until
 * SECONDS have passed, checking the clock every 256 events as scripts/load
 * does, then the program prints how many events were fired in all:
 *
 *	fired=N seconds=S threads=T
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "load_tp.h"

static double seconds;
static struct timespec start;

static double since(const struct timespec *t0) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void *fire(void *arg) {
	int64_t g = (int64_t)(intptr_t)arg;
	uint64_t n = 0;
	for (;;) {
		for (int k = 0; k < 256; k++) {
			lttng_ust_tracepoint(load, event, (int32_t)n, g, "hello");
			n++;
		}
		if (since(&start) >= seconds)
			break;
	}
	return (void *)(uintptr_t)n;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: load SECONDS THREADS\n");
		return 2;
	}
	seconds = atof(argv[1]);
	int threads = atoi(argv[2]);
	if (seconds <= 0 || threads < 1 || threads > 64) {
		fprintf(stderr, "load: bad arguments\n");
		return 2;
	}
	pthread_t th[64];
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, fire, (void *)(intptr_t)i);
	uint64_t fired = 0;
	for (int i = 0; i < threads; i++) {
		void *n;
		pthread_join(th[i], &n);
		fired += (uint64_t)(uintptr_t)n;
	}
	printf("fired=%llu seconds=%.3f threads=%d\n", (unsigned long long)fired, since(&start), threads);
	return 0;
}
