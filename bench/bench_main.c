/*
 * bench_main.c: the rivulet_bench entry point and the harness behind bench.h.
 *
 * It parses the command line, runs the suites listed in RV_BENCH_SUITES (all, or the ones
 * named), then prints every reported row as one aligned Markdown table, followed by the
 * machine, compiler, date and command, so the output can be pasted into docs/performance.md
 * as it is. The exit status is 1 when a self-check failed, 3 when `--check` is given and a row
 * missed its target, 2 on a usage error, 0 otherwise. It never measures anything itself.
 */
#include <errno.h>
#include <ftw.h>
#include <malloc.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* ---- the suite table -------------------------------------------------------------------- */

typedef struct suite_s {
    const char *name;
    const char *description;
    void (*run)(void);
} suite_t;

#define SUITE_ENTRY(name, description) {#name, description, rv_bench_suite_##name},
static const suite_t suites[] = {RV_BENCH_SUITES(SUITE_ENTRY)};
#undef SUITE_ENTRY
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

/* ---- state of the run ------------------------------------------------------------------- */

/* A reported row with its cells already formatted. */
enum {
    COL_SUITE,
    COL_CASE,
    COL_RIVULET,
    COL_BASELINE,
    COL_BFIG,
    COL_RATIO,
    COL_TARGET,
    COL_NOTES,
    NCOLS
};

static const char *const col_titles[NCOLS] = {"suite",           "case",  "rivulet", "baseline",
                                              "baseline figure", "ratio", "target",  "notes"};

typedef struct row_s {
    char *cells[NCOLS];
    bool has_target;
    bool target_met;
} row_t;

static row_t *rows;
static size_t nrows, rows_cap;
static char **contexts;
static size_t ncontexts, contexts_cap;
static int nfailures;
static bool quick;

static void *xrealloc(void *p, size_t size) {
    void *q = realloc(p, size);
    if (!q) {
        fprintf(stderr, "rivulet_bench: out of memory\n");
        exit(1);
    }
    return q;
}

static char *xstrdup(const char *s) {
    size_t len = strlen(s);
    char *d = xrealloc(NULL, len + 1);
    memcpy(d, s, len + 1);
    return d;
}

/* A heap copy of formatted text. */
static char *vformat(const char *fmt, va_list ap) RV_BENCH_PRINTF(1, 0);
static char *vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return xstrdup("?");
    }
    char *s = xrealloc(NULL, (size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static char *format(const char *fmt, ...) RV_BENCH_PRINTF(1, 2);
static char *format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

/* ---- timing and memory ------------------------------------------------------------------ */

double rv_bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

rv_bench_timing_t rv_bench_time(rv_bench_op_fn fn, void *ctx, const rv_bench_timing_opts_t *opts) {
    rv_bench_timing_opts_t o = {0};
    if (opts) {
        o = *opts;
    }
    int reps = o.reps > 0 ? o.reps : 5;
    if (reps > 1000) {
        reps = 1000;
    }
    double min_ns = (o.min_ms > 0 ? o.min_ms : 200.0) * 1e6;
    if (quick) {
        reps = 1;
        min_ns /= 10;
    }
    rv_bench_timing_t t = {0};
    if (!o.skip_warmup && fn(ctx) != 0) {
        t.failures++;
    }
    double *per_op = xrealloc(NULL, (size_t)reps * sizeof *per_op);
    for (int r = 0; r < reps; r++) {
        uint64_t n = 0;
        double start = rv_bench_now_ns(), elapsed;
        do {
            if (fn(ctx) != 0) {
                t.failures++;
            }
            n++;
            elapsed = rv_bench_now_ns() - start;
        } while (o.iters ? n < o.iters : elapsed < min_ns);
        per_op[r] = elapsed / (double)n;
        t.ops += n;
    }
    qsort(per_op, (size_t)reps, sizeof *per_op, compare_doubles);
    t.best_ns = per_op[0];
    t.median_ns = reps % 2 ? per_op[reps / 2] : (per_op[reps / 2 - 1] + per_op[reps / 2]) / 2;
    t.reps = reps;
    free(per_op);
    return t;
}

double rv_bench_rate(const rv_bench_timing_t *t, double units_per_op) {
    return t->best_ns > 0 ? units_per_op * 1e9 / t->best_ns : 0.0;
}

long rv_bench_status_kb(const char *name) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        return 0;
    }
    char line[256];
    long kb = 0;
    size_t n = strlen(name);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

char *rv_bench_strf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
    }
    va_end(ap);
    if (!s) {
        fprintf(stderr, "rivulet_bench: out of memory\n");
        exit(1);
    }
    return s;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void rv_bench_rm_tree(const char *path) {
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

extern char **environ;

char **rv_bench_child_env(const char *drop_prefix, const char *child_env, char *const *vars,
                          size_t nvars) {
    size_t nenv = 0;
    while (environ[nenv]) {
        nenv++;
    }
    char **envp = calloc(nenv + nvars + 1, sizeof *envp);
    if (!envp) {
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++) {
        if (strncmp(environ[i], drop_prefix, strlen(drop_prefix)) != 0 &&
            strncmp(environ[i], child_env, strlen(child_env)) != 0) {
            envp[k++] = environ[i];
        }
    }
    for (size_t i = 0; i < nvars; i++) {
        if (vars[i]) {
            envp[k++] = vars[i];
        }
    }
    return envp;
}

double rv_bench_peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0.0;
    }
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

size_t rv_bench_heap_bytes(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#else
    return 0;
#endif
}

/* ---- rows -------------------------------------------------------------------------------- */

/*
 * A figure with its unit: rates of bytes keep one decimal ("812.3 MB/s"); counts are scaled
 * ("1.23 M docs/s", "45.6 k docs/s") so the columns stay short.
 */
static char *format_figure(double v, const char *unit) {
    bool bytes = strstr(unit, "B/s") != NULL || strcmp(unit, "MB") == 0 || strcmp(unit, "MiB") == 0;
    if (bytes || v < 1e4) {
        return format(v < 10 ? "%.2f %s" : "%.1f %s", v, unit);
    }
    if (v < 1e6) {
        return format("%.1f k %s", v / 1e3, unit);
    }
    if (v < 1e9) {
        return format("%.2f M %s", v / 1e6, unit);
    }
    return format("%.2f G %s", v / 1e9, unit);
}

static char *format_pair(double v, const char *unit, double v2, const char *unit2) {
    char *a = format_figure(v, unit);
    if (!unit2) {
        return a;
    }
    char *b = format_figure(v2, unit2);
    char *s = format("%s; %s", a, b);
    free(a);
    free(b);
    return s;
}

/* Markdown cells may not hold '|' or line breaks. */
static char *cell(const char *s) {
    char *c = xstrdup(s ? s : "");
    for (char *p = c; *p; p++) {
        if (*p == '|' || *p == '\n' || *p == '\r') {
            *p = *p == '|' ? '/' : ' ';
        }
    }
    return c;
}

void rv_bench_report(const rv_bench_row_t *r) {
    if (nrows == rows_cap) {
        rows_cap = rows_cap ? rows_cap * 2 : 16;
        rows = xrealloc(rows, rows_cap * sizeof *rows);
    }
    row_t *row = &rows[nrows++];
    memset(row, 0, sizeof *row);
    row->cells[COL_SUITE] = cell(r->suite);
    row->cells[COL_CASE] = cell(r->name);
    row->cells[COL_RIVULET] = format_pair(r->value, r->unit ? r->unit : "", r->value2, r->unit2);
    row->cells[COL_NOTES] = cell(r->note);

    bool have_ratio = false;
    double ratio = 0.0;
    if (r->baseline) {
        row->cells[COL_BASELINE] = cell(r->baseline);
        row->cells[COL_BFIG] =
            format_pair(r->baseline_value, r->unit ? r->unit : "", r->baseline_value2, r->unit2);
        double mine = r->ratio_on_second ? r->value2 : r->value;
        double theirs = r->ratio_on_second ? r->baseline_value2 : r->baseline_value;
        if (mine > 0 && theirs > 0) {
            ratio = r->lower_is_better ? theirs / mine : mine / theirs;
            have_ratio = true;
        }
    } else {
        row->cells[COL_BASELINE] = xstrdup("-");
        row->cells[COL_BFIG] = xstrdup("-");
    }
    row->cells[COL_RATIO] = have_ratio ? format("%.2fx", ratio) : xstrdup("-");

    if (r->target > 0) {
        row->has_target = true;
        row->target_met = have_ratio && ratio >= r->target;
        row->cells[COL_TARGET] = format(">= %gx: %s", r->target,
                                        !have_ratio       ? "no baseline"
                                        : row->target_met ? "met"
                                                          : "MISSED");
    } else {
        row->cells[COL_TARGET] = xstrdup("");
    }
}

void rv_bench_fail(const char *suite, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    fprintf(stderr, "[%s] SELF-CHECK FAILED: %s\n", suite, msg);
    free(msg);
    nfailures++;
}

void rv_bench_context(const char *fmt, ...) {
    if (ncontexts == contexts_cap) {
        contexts_cap = contexts_cap ? contexts_cap * 2 : 8;
        contexts = xrealloc(contexts, contexts_cap * sizeof *contexts);
    }
    va_list ap;
    va_start(ap, fmt);
    contexts[ncontexts++] = vformat(fmt, ap);
    va_end(ap);
}

void rv_bench_log(const char *suite, const char *fmt, ...) {
    fprintf(stderr, "[%s] ", suite);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool rv_bench_quick(void) {
    return quick;
}

/* ---- the report ------------------------------------------------------------------------- */

static void print_padded(const char *s, size_t width) {
    size_t len = strlen(s);
    fputs(s, stdout);
    for (size_t i = len; i < width; i++) {
        fputc(' ', stdout);
    }
}

static void print_table(void) {
    size_t width[NCOLS];
    for (int c = 0; c < NCOLS; c++) {
        width[c] = strlen(col_titles[c]);
        for (size_t r = 0; r < nrows; r++) {
            size_t len = strlen(rows[r].cells[c]);
            if (len > width[c]) {
                width[c] = len;
            }
        }
    }
    for (int c = 0; c < NCOLS; c++) {
        fputs("| ", stdout);
        print_padded(col_titles[c], width[c]);
        fputc(' ', stdout);
    }
    fputs("|\n", stdout);
    for (int c = 0; c < NCOLS; c++) {
        fputs("| ", stdout);
        for (size_t i = 0; i < width[c]; i++) {
            fputc('-', stdout);
        }
        fputc(' ', stdout);
    }
    fputs("|\n", stdout);
    for (size_t r = 0; r < nrows; r++) {
        for (int c = 0; c < NCOLS; c++) {
            fputs("| ", stdout);
            print_padded(rows[r].cells[c], width[c]);
            fputc(' ', stdout);
        }
        fputs("|\n", stdout);
    }
}

/* The CPU's model name from /proc/cpuinfo, into `out`. */
static void cpu_model(char *out, size_t size) {
    snprintf(out, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Hardware", 8) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t') {
                    colon++;
                }
                colon[strcspn(colon, "\n")] = 0;
                snprintf(out, size, "%s", colon);
                break;
            }
        }
    }
    fclose(f);
}

static void print_footer(int argc, char **argv) {
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    struct utsname un;
    bool have_uname = uname(&un) == 0;
    char date[64] = "unknown date";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) {
        strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
    }
#if defined(__clang__)
    const char *compiler = "clang";
#elif defined(__GNUC__)
    const char *compiler = "gcc";
#else
    const char *compiler = "cc";
#endif
#if defined(NDEBUG) && defined(__OPTIMIZE__)
    const char *build = "optimised (NDEBUG)";
#else
    const char *build = "NOT a Release build: the figures are not representative";
#endif

    printf("\n- machine: %s, %ld cores, %s %s %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN),
           have_uname ? un.sysname : "?", have_uname ? un.release : "?",
           have_uname ? un.machine : "?");
    printf("- compiler: %s %s, %s\n", compiler, __VERSION__, build);
    printf("- date: %s\n", date);
    printf("- command:");
    for (int i = 0; i < argc; i++) {
        printf(" %s", argv[i]);
    }
    printf("\n- peak RSS: %.0f MiB\n", rv_bench_peak_rss_mib());
    double load[3];
    if (getloadavg(load, 3) == 3) {
        printf("- load average at the end: %.2f, %.2f, %.2f (other work on the machine skews "
               "the figures)\n",
               load[0], load[1], load[2]);
    }
    for (size_t i = 0; i < ncontexts; i++) {
        printf("- %s\n", contexts[i]);
    }
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f, "usage: rivulet_bench [--check] [--quick] [--list] [SUITE...]\n"
               "  Runs the named suites (all when none is named) and prints one Markdown table.\n"
               "  --check   exit 3 when a row misses its target (a ratio such as >= 3x)\n"
               "  --quick   small data sets and one repetition: a smoke test, not a measurement\n"
               "  --list    list the suites and exit\n"
               "Exit status: 0 ok, 1 a self-check failed, 2 usage error,\n"
               "3 a target missed (with --check).\n");
}

int main(int argc, char **argv) {
    bool check = false;
    bool selected[NSUITES > 0 ? NSUITES : 1] = {false};
    bool any_selected = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--check") == 0) {
            check = true;
        } else if (strcmp(a, "--quick") == 0) {
            quick = true;
        } else if (strcmp(a, "--list") == 0) {
            for (size_t s = 0; s < NSUITES; s++) {
                printf("%-12s %s\n", suites[s].name, suites[s].description);
            }
            return 0;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            size_t s = 0;
            while (s < NSUITES && strcmp(suites[s].name, a) != 0) {
                s++;
            }
            if (s == NSUITES) {
                fprintf(stderr, "rivulet_bench: unknown suite or option '%s'\n", a);
                usage(stderr);
                return 2;
            }
            selected[s] = true;
            any_selected = true;
        }
    }

    for (size_t s = 0; s < NSUITES; s++) {
        if (any_selected && !selected[s]) {
            continue;
        }
        rv_bench_log(suites[s].name, "%s", suites[s].description);
        double start = rv_bench_now_ns();
        suites[s].run();
        rv_bench_log(suites[s].name, "done in %.1f s", (rv_bench_now_ns() - start) / 1e9);
    }

    size_t targets = 0, met = 0;
    for (size_t r = 0; r < nrows; r++) {
        targets += rows[r].has_target;
        met += rows[r].has_target && rows[r].target_met;
    }
    fflush(stderr);
    putchar('\n');
    print_table();
    print_footer(argc, argv);
    printf("- self-checks: %s\n",
           nfailures ? "FAILED (see the messages above the table)" : "all passed");
    printf("- targets: %zu of %zu met%s\n", met, targets,
           quick ? " (--quick: not a measurement)" : "");
    fflush(stdout);
    if (nfailures) {
        fprintf(stderr, "rivulet_bench: %d self-check(s) failed\n", nfailures);
    }

    for (size_t r = 0; r < nrows; r++) {
        for (int c = 0; c < NCOLS; c++) {
            free(rows[r].cells[c]);
        }
    }
    free(rows);
    for (size_t i = 0; i < ncontexts; i++) {
        free(contexts[i]);
    }
    free(contexts);

    if (nfailures) {
        return 1;
    }
    if (check && met < targets) {
        fprintf(stderr, "rivulet_bench: %zu target(s) missed\n", targets - met);
        return 3;
    }
    return 0;
}

/* ---- the peak-RSS sampler (diagnosis) ------------------------------------------------------ */

static char peak_smaps[16384];
static atomic_bool sampler_stop;
static pthread_t sampler_thread;

/* The resident kB of this process's mappings into `out`, largest first: file mappings summed by
 * name, anonymous ones one by one with their size (a 64 MiB one is a malloc arena, an 8 MiB
 * one a thread stack). */
static void smaps_capture(char *out, size_t cap) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) {
        return;
    }
    enum { MAXN = 512 };
    static char names[MAXN][160];
    static long kb[MAXN];
    int n = 0, cur = -1;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && strchr(line, ' ')) {
            char file[100] = "", name[160];
            sscanf(line, "%*s %*s %*s %*s %*s %99s", file);
            if (!file[0] || strcmp(file, "[heap]") == 0) {
                snprintf(name, sizeof name, "%s anon %lu kB at %lx", file, (hi - lo) / 1024, lo);
            } else {
                snprintf(name, sizeof name, "%s", file);
            }
            cur = -1;
            for (int i = 0; i < n; i++) {
                if (strcmp(names[i], name) == 0) {
                    cur = i;
                }
            }
            if (cur < 0 && n < MAXN) {
                cur = n++;
                snprintf(names[cur], sizeof names[cur], "%s", name);
                kb[cur] = 0;
            }
        } else if (cur >= 0 && strncmp(line, "Rss:", 4) == 0) {
            kb[cur] += strtol(line + 4, NULL, 10);
        }
    }
    fclose(f);
    size_t used = 0;
    for (int k = 0; k < 40; k++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            if (kb[i] > 0 && (best < 0 || kb[i] > kb[best])) {
                best = i;
            }
        }
        if (best < 0 || used >= cap) {
            break;
        }
        int w = snprintf(out + used, cap - used, "  rss %6ld kB  %s\n", kb[best], names[best]);
        used += w > 0 ? (size_t)w : 0;
        kb[best] = 0;
    }
}

static void *sampler_main(void *arg) {
    (void)arg;
    long max = 0;
    while (!atomic_load(&sampler_stop)) {
        long rss = rv_bench_status_kb("VmRSS");
        if (rss > max + 256) {
            max = rss;
            char buf[sizeof peak_smaps];
            int w = snprintf(buf, sizeof buf, "at VmRSS %ld kB:\n", rss);
            buf[w > 0 && (size_t)w < sizeof buf ? w : 0] = '\0';
            smaps_capture(buf + strlen(buf), sizeof buf - strlen(buf));
            memcpy(peak_smaps, buf, sizeof buf);
        }
        usleep(1000);
    }
    return NULL;
}

bool rv_bench_rss_sampler_start(void) {
    atomic_store(&sampler_stop, false);
    peak_smaps[0] = '\0';
    return pthread_create(&sampler_thread, NULL, sampler_main, NULL) == 0;
}

void rv_bench_rss_sampler_stop(const char *suite) {
    atomic_store(&sampler_stop, true);
    pthread_join(sampler_thread, NULL);
    fprintf(stderr, "[%s] mappings %s", suite, peak_smaps);
}

/* ---- running this program again ------------------------------------------------------------ */

int rv_bench_spawn_self(pid_t *pid, const char *suite, char **envp) {
    /* The path /proc/self/exe names (under valgrind, the program valgrind runs, not itself). */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
    } else {
        snprintf(self, sizeof self, "/proc/self/exe");
    }
    fflush(stdout);
    fflush(stderr);
    const char *wrap = getenv("RV_BENCH_WRAP");
    if (wrap && *wrap) {
        char *wargv[] = {(char *)wrap, self, (char *)suite, NULL};
        return posix_spawnp(pid, wrap, NULL, NULL, wargv, envp);
    }
    char *argv[] = {"rivulet_bench", (char *)suite, NULL};
    return posix_spawn(pid, self, NULL, NULL, argv, envp);
}

/* ---- a child's application run ---------------------------------------------------------------- */

bool rv_bench_run_app(const char *suite, rv_app_t *app, const rv_df_t *df, bool sampling,
                      rv_bench_app_run_t *out) {
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 600000};
    rv_error_t *err = NULL;
    memset(out, 0, sizeof *out);
    out->t0_ns = rv_bench_now_ns();
    rv_err_t e = df ? rv_app_run(app, &ro, &err) : RV_ERR_INVALID_ARG;
    out->t1_ns = rv_bench_now_ns();
    if (e != RV_OK) {
        fprintf(stderr, "[%s] child: %s\n", suite, err ? rv_error_message(err) : "building failed");
        rv_error_destroy(err);
    }
    rv_app_metrics(app, &out->metrics);
    if (sampling) {
        rv_bench_rss_sampler_stop(suite);
    }
    rv_app_destroy(app);
    out->hwm_kb = rv_bench_status_kb("VmHWM");
    return e == RV_OK;
}
