/*
 * bench/bench_registry.c — how long request threads keep the registry's lock
 * while a run trains: GET /api/v1/runs over 1,000 runs, and PATCH with a 1 MB
 * body. A probe thread takes the lock over and over (registry_status_line) and
 * records how long each take waited; the worker's iteration boundary takes the
 * same lock, so the probe's worst wait during a request is how long that
 * request can delay the worker. Prints the figures; asserts nothing.
 *
 *   bench_registry [DATA_IDX]    (default: the bundled 10,000 digits)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/run_json.h"
#include "daemon/registry.h"

enum { RUNS = 1000, LISTS = 20, PATCHES = 10, BODY = 1 << 20 };

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU time of the calling thread: what a request costs whatever else the machine runs. */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static gand_registry *reg;
static atomic_bool probing, stop_probe;
static double probe_max; /* longest take of the lock since the last reset, s */
static pthread_mutex_t probe_mu = PTHREAD_MUTEX_INITIALIZER;

static void *probe(void *arg)
{
    (void)arg;
    char line[256];
    while (!atomic_load(&stop_probe)) {
        double t0 = now_s();
        registry_status_line(reg, line, sizeof line);
        double dt = now_s() - t0;
        if (atomic_load(&probing)) {
            pthread_mutex_lock(&probe_mu);
            if (dt > probe_max)
                probe_max = dt;
            pthread_mutex_unlock(&probe_mu);
        }
        usleep(20);
    }
    return NULL;
}

static void probe_reset(void)
{
    pthread_mutex_lock(&probe_mu);
    probe_max = 0;
    pthread_mutex_unlock(&probe_mu);
    atomic_store(&probing, true);
}

static double probe_take(void)
{
    atomic_store(&probing, false);
    pthread_mutex_lock(&probe_mu);
    double m = probe_max;
    pthread_mutex_unlock(&probe_mu);
    return m;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const gan_error *err)
{
    fprintf(stderr, "bench_registry: %s: %s\n", what, err->message);
    exit(1);
}

int main(int argc, char **argv)
{
    const char *data = argc > 1 ? argv[1] : GAND_SOURCE_DATADIR "/mnist-10k-images-idx3-ubyte.gz";
    char dir[] = "/tmp/gand-bench-registry-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    gand_dataset_entry ds = {.holdout = 2000};
    snprintf(ds.name, sizeof ds.name, "mnist");
    snprintf(ds.path, sizeof ds.path, "%s", data);
    registry_options opt = {.state_dir = dir,
                            .device = "cpu",
                            .datasets = &ds,
                            .dataset_count = 1,
                            .max_runs = 0,
                            .max_sample_n = 256};
    gan_error err = {{0}, {0}};
    if (!(reg = registry_open(&opt, &err)))
        die("registry_open", &err);
    if (registry_start(reg, &err) != 0)
        die("registry_start", &err);

    /* one run that trains for as long as the bench lasts, then 999 queued behind it */
    const char *train = "{\"latent_dim\":16,\"g_hidden\":64,\"d_units\":32,\"d_pieces\":2,"
                        "\"batch_size\":100,\"epochs\":1000000,\"sample_every\":0,"
                        "\"checkpoint_every\":1000000}";
    char first[64], id[64], *json = NULL;
    double t0 = now_s();
    for (int i = 0; i < RUNS; i++) {
        if (registry_create_run(reg, train, strlen(train), NULL, i ? id : first, sizeof id, &err) !=
            REG_OK)
            die("create", &err);
    }
    printf("created %d runs in %.2f s\n", RUNS, now_s() - t0);
    char line[256];
    for (int i = 0; i < 600; i++) { /* until the first one trains */
        registry_status_line(reg, line, sizeof line);
        if (strncmp(line, "training", 8) == 0)
            break;
        usleep(50000);
    }
    printf("%s\n", line);

    pthread_t th;
    pthread_create(&th, NULL, probe, NULL);
    usleep(200000);
    probe_reset();
    usleep(500000);
    double idle = probe_take();

    double lists[LISTS], lcpu[LISTS], lwait = 0;
    size_t bytes = 0;
    for (int i = 0; i < LISTS; i++) {
        probe_reset();
        double a = now_s(), c = cpu_s();
        gand_run_view *runs;
        int n;
        if (registry_list_runs(reg, &runs, &n) != REG_OK)
            die("list", &err);
        json = api_runs_json(runs, n); /* what GET /api/v1/runs answers */
        gand_run_views_free(runs, n);
        lists[i] = now_s() - a;
        lcpu[i] = cpu_s() - c;
        double w = probe_take();
        lwait = w > lwait ? w : lwait;
        bytes = strlen(json);
        free(json);
    }
    qsort(lists, LISTS, sizeof lists[0], cmp_double);
    qsort(lcpu, LISTS, sizeof lcpu[0], cmp_double);

    /* PATCH a queued run: one mutable field, padded to 1 MB with JSON whitespace */
    char *body = malloc(BODY + 1);
    int head = snprintf(body, BODY, "{\"lr_d\": 0.0002");
    memset(body + head, ' ', (size_t)(BODY - head - 1));
    body[BODY - 1] = '}';
    body[BODY] = '\0';
    double patches[PATCHES], pcpu[PATCHES], pwait = 0;
    for (int i = 0; i < PATCHES; i++) {
        probe_reset();
        double a = now_s(), c = cpu_s();
        gand_patch_view answer;
        reg_status st = registry_patch_run(reg, id, body, BODY, &answer, &err);
        json = st == REG_OK ? api_patch_json(&answer) : NULL;
        if (st == REG_OK)
            gand_run_view_free(&answer.run);
        patches[i] = now_s() - a;
        pcpu[i] = cpu_s() - c;
        double w = probe_take();
        pwait = w > pwait ? w : pwait;
        if (st != REG_OK)
            die("patch", &err);
        free(json);
    }
    qsort(patches, PATCHES, sizeof patches[0], cmp_double);
    qsort(pcpu, PATCHES, sizeof pcpu[0], cmp_double);
    atomic_store(&stop_probe, true);
    pthread_join(th, NULL);

    printf("\n%-44s %10s %10s\n", "", "median ms", "max ms");
    printf("%-44s %10.3f %10.3f\n", "lock wait, no request (the probe alone)", 0.0, idle * 1e3);
    printf("%-44s %10.3f %10.3f\n", "GET /api/v1/runs, 1,000 runs: answer", lists[LISTS / 2] * 1e3,
           lists[LISTS - 1] * 1e3);
    printf("%-44s %10.3f %10.3f\n", "  CPU time of the request thread", lcpu[LISTS / 2] * 1e3,
           lcpu[LISTS - 1] * 1e3);
    printf("%-44s %10s %10.3f\n", "  lock wait it causes", "", lwait * 1e3);
    printf("%-44s %10.3f %10.3f\n", "PATCH, 1 MB body: answer", patches[PATCHES / 2] * 1e3,
           patches[PATCHES - 1] * 1e3);
    printf("%-44s %10.3f %10.3f\n", "  CPU time of the request thread", pcpu[PATCHES / 2] * 1e3,
           pcpu[PATCHES - 1] * 1e3);
    printf("%-44s %10s %10.3f\n", "  lock wait it causes", "", pwait * 1e3);
    printf("(list answer: %zu bytes)\n", bytes);

    free(body);
    registry_shutdown(reg);
    registry_close(reg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_registry: could not remove %s\n", dir);
    return 0;
}
