/* guard_cli.c — `brigade guard`: measure the injection detectors on
 * labelled data (eval), score one text (scan), and print the classifier's
 * features for the training script (features). Offline: no server, no
 * store. */
#include "app/cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guard/classifier.h"
#include "guard/detect.h"
#include "guard/patterns.h"
#include "util/xalloc.h"

#define GUARD_CLI_LINE_MAX (4 * 1024 * 1024)   /* one JSONL line */
#define GUARD_CLI_ROWS_MAX 1000000

static const char guard_usage[] =
    "usage: brigade guard COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  eval FILE.jsonl   recall, false-positive rate, precision and latency of each\n"
    "                    detector and of them combined, per channel, on labelled lines\n"
    "                    ({\"text\", \"label\": 0|1, \"channel\": \"user\"|\"tool\",\n"
    "                    \"attack_category\"}); lists the combined misses by category\n"
    "  scan              score the text on standard input; prints JSON\n"
    "  features FILE.jsonl  the classifier's feature indices of each line, for\n"
    "                    scripts/guard-train.py (one line each: N idx:count ...)\n"
    "\n"
    "Options:\n"
    "  --rules FILE           pattern rules (default examples/guard-rules.txt)\n"
    "  --weights FILE         classifier weights (default examples/guard-classifier.bin)\n"
    "  --detectors LIST       patterns,classifier (default: both)\n"
    "  --threshold-patterns X flag at pattern score >= X (default 0.5)\n"
    "  --threshold-user X     flag user input at classifier score >= X (default 0.5)\n"
    "  --threshold-tool X     flag tool output at classifier score >= X (default 0.5)\n"
    "  --channel user|tool    scan: the channel of the text (default tool)\n"
    "  --bits N               features: mask indices to N bits (default 17)\n"
    "  --json                 eval: machine-readable output\n";

typedef struct cli_opts {
    const char *rules, *weights, *detectors;
    double      thr_patterns, thr_user, thr_tool;
    guard_channel channel;
    unsigned    bits;
    bool        json;
    const char *file;
} cli_opts;

static int cli_parse(int argc, char **argv, cli_opts *o)
{
    *o = (cli_opts){.rules = "examples/guard-rules.txt",
                    .weights = "examples/guard-classifier.bin",
                    .detectors = "patterns,classifier",
                    .thr_patterns = 0.5, .thr_user = 0.5, .thr_tool = 0.5,
                    .channel = GUARD_CHANNEL_TOOL, .bits = 17};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double *thr = strcmp(a, "--threshold-patterns") == 0 ? &o->thr_patterns
                    : strcmp(a, "--threshold-user") == 0     ? &o->thr_user
                    : strcmp(a, "--threshold-tool") == 0     ? &o->thr_tool : NULL;
        if (strcmp(a, "--json") == 0) { o->json = true; continue; }
        if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "brigade guard: %s needs a value\n", a);
            return -1;
        }
        if (strcmp(a, "--rules") == 0) { o->rules = v; i++; }
        else if (strcmp(a, "--weights") == 0) { o->weights = v; i++; }
        else if (strcmp(a, "--detectors") == 0) { o->detectors = v; i++; }
        else if (thr) {
            char *e;
            *thr = strtod(v, &e);
            if (*e || !(*thr >= 0 && *thr <= 1)) {
                fprintf(stderr, "brigade guard: %s takes a number in [0, 1]\n", a);
                return -1;
            }
            i++;
        } else if (strcmp(a, "--channel") == 0) {
            if (guard_channel_parse(v, &o->channel) != 0) {
                fprintf(stderr, "brigade guard: --channel is user or tool\n");
                return -1;
            }
            i++;
        } else if (strcmp(a, "--bits") == 0) {
            o->bits = (unsigned)atoi(v);
            if (o->bits < GUARD_CLS_BITS_MIN || o->bits > GUARD_CLS_BITS_MAX) {
                fprintf(stderr, "brigade guard: --bits is %d..%d\n", GUARD_CLS_BITS_MIN,
                        GUARD_CLS_BITS_MAX);
                return -1;
            }
            i++;
        } else if (a[0] != '-' && !o->file) o->file = a;
        else {
            fprintf(stderr, "brigade guard: unknown option \"%s\"\n", a);
            return -1;
        }
    }
    return 0;
}

/* The detectors the options ask for: [0] patterns, [1] classifier (NULL
 * when not asked for). */
static int cli_detectors(const cli_opts *o, guard_detector *det[2])
{
    char err[400];
    det[0] = det[1] = NULL;
    if (strstr(o->detectors, "patterns")) {
        guard_rules *r = guard_rules_load(o->rules, err, sizeof err);
        if (!r) { fprintf(stderr, "brigade guard: %s\n", err); return -1; }
        det[0] = guard_patterns_new(r);
    }
    if (strstr(o->detectors, "classifier")) {
        guard_classifier *c = guard_classifier_load(o->weights, err, sizeof err);
        if (!c) {
            fprintf(stderr, "brigade guard: %s\n", err);
            guard_detector_free(det[0]);
            return -1;
        }
        det[1] = guard_classifier_detector_new(c);
    }
    if (!det[0] && !det[1]) {
        fprintf(stderr, "brigade guard: --detectors names none of patterns, classifier\n");
        return -1;
    }
    return 0;
}

/* ---- reading labelled lines ---- */

typedef struct cli_row {
    char         *text;
    size_t        len;
    int           label;
    guard_channel ch;
    char         *category;
} cli_row;

/* Read FILE.jsonl; NULL (and a message) on the first bad line. */
static cli_row *cli_read_rows(const char *path, size_t *n_out, bool need_label)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "brigade guard: %s: cannot open\n", path); return NULL; }
    cli_row *rows = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    bool bad = false;
    while ((got = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        if (got > GUARD_CLI_LINE_MAX) {
            fprintf(stderr, "brigade guard: %s:%zu: longer than %d bytes\n", path, lineno,
                    GUARD_CLI_LINE_MAX);
            bad = true;
            break;
        }
        size_t s = 0;
        while (s < (size_t)got && (line[s] == ' ' || line[s] == '\n' || line[s] == '\r')) s++;
        if (s == (size_t)got) continue;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)got);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(j, "label");
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "channel");
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(j, "attack_category");
        guard_channel c = GUARD_CHANNEL_USER;
        if (!cJSON_IsString(text) || (need_label && (!cJSON_IsNumber(label) ||
            (label->valuedouble != 0 && label->valuedouble != 1))) ||
            guard_channel_parse(cJSON_IsString(ch) ? ch->valuestring : NULL, &c) != 0) {
            fprintf(stderr, "brigade guard: %s:%zu: needs \"text\" (string), \"label\" (0 or 1) "
                    "and \"channel\" (\"user\" or \"tool\")\n", path, lineno);
            cJSON_Delete(j);
            bad = true;
            break;
        }
        if (n == GUARD_CLI_ROWS_MAX) {
            fprintf(stderr, "brigade guard: %s: more than %d lines\n", path, GUARD_CLI_ROWS_MAX);
            cJSON_Delete(j);
            bad = true;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            rows = xrealloc(rows, cap * sizeof *rows);
        }
        cli_row *r = &rows[n++];
        r->len = strlen(text->valuestring);
        r->text = xstrdup(text->valuestring);
        r->label = cJSON_IsNumber(label) ? label->valueint : 0;   /* clamped by cJSON */
        r->ch = c;
        r->category = xstrdup(cJSON_IsString(cat) ? cat->valuestring : "(none)");
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    if (bad) {
        for (size_t i = 0; i < n; i++) { free(rows[i].text); free(rows[i].category); }
        free(rows);
        return NULL;
    }
    *n_out = n;
    return rows;
}

static void cli_free_rows(cli_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) { free(rows[i].text); free(rows[i].category); }
    free(rows);
}

/* ---- eval ---- */

static double cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

enum { DET_PATTERNS, DET_CLASSIFIER, DET_COMBINED, DET_N };
static const char *const det_names[DET_N] = {"patterns", "classifier", "combined"};
enum { CH_USER, CH_TOOL, CH_ALL, CH_N };
static const char *const ch_names[CH_N] = {"user", "tool", "all"};

typedef struct cli_cell {
    size_t tp, fp, fn, tn;
    double *lat;          /* µs per sample */
    size_t  n_lat;
    double  bytes, us;    /* for µs per KB */
} cli_cell;

static int cli_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cli_pct(double *v, size_t n, double p)
{
    if (!n) return 0;
    size_t k = (size_t)ceil(p * (double)n) - 1;
    if (k >= n) k = n - 1;
    return v[k];
}

static void cli_count(cli_cell *c, int label, bool flagged, double us, size_t bytes)
{
    if (label && flagged) c->tp++;
    else if (label) c->fn++;
    else if (flagged) c->fp++;
    else c->tn++;
    c->lat[c->n_lat++] = us;
    c->us += us;
    c->bytes += (double)bytes;
}

typedef struct cli_miss {
    const char *category;
    size_t      n;
} cli_miss;

static int guard_eval(const cli_opts *o)
{
    size_t n = 0;
    cli_row *rows = cli_read_rows(o->file, &n, true);
    if (!rows) return 2;
    guard_detector *det[2];
    if (cli_detectors(o, det) != 0) { cli_free_rows(rows, n); return 2; }
    cli_cell cells[DET_N][CH_N];
    memset(cells, 0, sizeof cells);
    for (int d = 0; d < DET_N; d++)
        for (int c = 0; c < CH_N; c++) cells[d][c].lat = xmalloc((n + 1) * sizeof(double));
    cli_miss *miss = NULL;
    size_t n_miss = 0;
    for (size_t i = 0; i < n; i++) {
        cli_row *r = &rows[i];
        bool flag[DET_N] = {false};
        double lat[DET_N] = {0};
        for (int d = 0; d < 2; d++) {
            if (!det[d]) continue;
            guard_detection out;
            double t0 = cli_now_us();
            guard_detect_scan(det[d], r->text, r->len, r->ch, &out);
            lat[d] = cli_now_us() - t0;
            double thr = d == DET_PATTERNS ? o->thr_patterns
                       : r->ch == GUARD_CHANNEL_USER ? o->thr_user : o->thr_tool;
            flag[d] = out.score >= thr;
        }
        flag[DET_COMBINED] = flag[DET_PATTERNS] || flag[DET_CLASSIFIER];
        lat[DET_COMBINED] = lat[DET_PATTERNS] + lat[DET_CLASSIFIER];
        for (int d = 0; d < DET_N; d++) {
            if (d < 2 && !det[d]) continue;
            cli_count(&cells[d][r->ch == GUARD_CHANNEL_USER ? CH_USER : CH_TOOL], r->label,
                      flag[d], lat[d], r->len);
            cli_count(&cells[d][CH_ALL], r->label, flag[d], lat[d], r->len);
        }
        if (r->label && !flag[DET_COMBINED]) {
            size_t k;
            for (k = 0; k < n_miss; k++)
                if (strcmp(miss[k].category, r->category) == 0) break;
            if (k == n_miss) {
                miss = xrealloc(miss, (n_miss + 1) * sizeof *miss);
                miss[n_miss++] = (cli_miss){r->category, 0};
            }
            miss[k].n++;
        }
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", o->file);
    cJSON_AddNumberToObject(root, "samples", (double)n);
    cJSON *th = cJSON_AddObjectToObject(root, "thresholds");
    cJSON_AddNumberToObject(th, "patterns", o->thr_patterns);
    cJSON_AddNumberToObject(th, "classifier_user", o->thr_user);
    cJSON_AddNumberToObject(th, "classifier_tool", o->thr_tool);
    cJSON *dets = cJSON_AddObjectToObject(root, "detectors");
    if (!o->json)
        printf("%-10s %-5s %6s %6s %7s %7s %9s %8s %8s %8s\n", "detector", "chan", "pos", "neg",
               "recall", "fpr", "precision", "p50_us", "p99_us", "us/KB");
    for (int d = 0; d < DET_N; d++) {
        if (d < 2 && !det[d]) continue;
        cJSON *dj = cJSON_AddObjectToObject(dets, det_names[d]);
        for (int c = 0; c < CH_N; c++) {
            cli_cell *x = &cells[d][c];
            size_t pos = x->tp + x->fn, neg = x->fp + x->tn;
            double recall = pos ? (double)x->tp / (double)pos : 0;
            double fpr = neg ? (double)x->fp / (double)neg : 0;
            double prec = x->tp + x->fp ? (double)x->tp / (double)(x->tp + x->fp) : 0;
            qsort(x->lat, x->n_lat, sizeof(double), cli_cmp_double);
            double p50 = cli_pct(x->lat, x->n_lat, 0.5), p99 = cli_pct(x->lat, x->n_lat, 0.99);
            double us_kb = x->bytes > 0 ? x->us / (x->bytes / 1024.0) : 0;
            cJSON *cj = cJSON_AddObjectToObject(dj, ch_names[c]);
            cJSON_AddNumberToObject(cj, "positives", (double)pos);
            cJSON_AddNumberToObject(cj, "negatives", (double)neg);
            cJSON_AddNumberToObject(cj, "tp", (double)x->tp);
            cJSON_AddNumberToObject(cj, "fp", (double)x->fp);
            cJSON_AddNumberToObject(cj, "recall", recall);
            cJSON_AddNumberToObject(cj, "fpr", fpr);
            cJSON_AddNumberToObject(cj, "precision", prec);
            cJSON_AddNumberToObject(cj, "latency_p50_us", p50);
            cJSON_AddNumberToObject(cj, "latency_p99_us", p99);
            cJSON_AddNumberToObject(cj, "us_per_kb", us_kb);
            if (!o->json)
                printf("%-10s %-5s %6zu %6zu %7.4f %7.4f %9.4f %8.1f %8.1f %8.1f\n", det_names[d],
                       ch_names[c], pos, neg, recall, fpr, prec, p50, p99, us_kb);
        }
    }
    cJSON *mj = cJSON_AddObjectToObject(root, "misses_by_category");
    if (!o->json && n_miss) printf("\nmisses (combined) by attack_category:\n");
    for (size_t k = 0; k < n_miss; k++) {
        cJSON_AddNumberToObject(mj, miss[k].category, (double)miss[k].n);
        if (!o->json) printf("  %5zu  %s\n", miss[k].n, miss[k].category);
    }
    if (o->json) {
        char *s = cJSON_Print(root);
        puts(s);
        free(s);
    }
    cJSON_Delete(root);
    free(miss);
    for (int d = 0; d < DET_N; d++)
        for (int c = 0; c < CH_N; c++) free(cells[d][c].lat);
    guard_detector_free(det[0]);
    guard_detector_free(det[1]);
    cli_free_rows(rows, n);
    return 0;
}

/* ---- scan ---- */

static int guard_scan(const cli_opts *o)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            if (cap >= (size_t)64 << 20) {
                fprintf(stderr, "brigade guard: input larger than 64 MiB\n");
                free(buf);
                return 2;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    guard_detector *det[2];
    if (cli_detectors(o, det) != 0) { free(buf); return 2; }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "channel", guard_channel_name(o->channel));
    cJSON_AddNumberToObject(root, "bytes", (double)n);
    bool flagged = false;
    for (int d = 0; d < 2; d++) {
        if (!det[d]) continue;
        guard_detection out;
        guard_detect_scan(det[d], buf, n, o->channel, &out);
        double thr = d == 0 ? o->thr_patterns
                   : o->channel == GUARD_CHANNEL_USER ? o->thr_user : o->thr_tool;
        flagged |= out.score >= thr;
        cJSON *dj = cJSON_AddObjectToObject(root, det[d]->name);
        cJSON_AddNumberToObject(dj, "score", out.score);
        cJSON_AddBoolToObject(dj, "flagged", out.score >= thr);
        cJSON_AddNumberToObject(dj, "windows", (double)out.windows);
        cJSON *lj = cJSON_AddArrayToObject(dj, "labels");
        for (size_t i = 0; i < out.n_labels; i++)
            cJSON_AddItemToArray(lj, cJSON_CreateString(out.labels[i]));
        cJSON *sj = cJSON_AddArrayToObject(dj, "spans");
        for (size_t i = 0; i < out.n_spans; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "start", (double)out.spans[i].start);
            cJSON_AddNumberToObject(s, "end", (double)out.spans[i].end);
            cJSON_AddStringToObject(s, "label", out.spans[i].label);
            cJSON_AddItemToArray(sj, s);
        }
    }
    cJSON_AddBoolToObject(root, "flagged", flagged);
    char *s = cJSON_Print(root);
    puts(s);
    free(s);
    cJSON_Delete(root);
    guard_detector_free(det[0]);
    guard_detector_free(det[1]);
    free(buf);
    return flagged ? 1 : 0;
}

/* ---- features ---- */

typedef struct feat_list {
    uint32_t *v;
    size_t    n, cap;
    uint32_t  mask;
} feat_list;

static void feat_add(uint32_t h, void *ctx)
{
    feat_list *f = ctx;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 1024;
        f->v = xrealloc(f->v, f->cap * sizeof *f->v);
    }
    f->v[f->n++] = h & f->mask;
}

static int cli_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int guard_features_cmd(const cli_opts *o)
{
    size_t n = 0;
    cli_row *rows = cli_read_rows(o->file, &n, false);
    if (!rows) return 2;
    feat_list f = {.mask = (1u << o->bits) - 1};
    for (size_t i = 0; i < n; i++) {
        f.n = 0;
        guard_features(rows[i].text, rows[i].len, feat_add, &f);
        qsort(f.v, f.n, sizeof *f.v, cli_cmp_u32);
        printf("%zu", f.n);
        for (size_t k = 0; k < f.n;) {
            size_t e = k;
            while (e < f.n && f.v[e] == f.v[k]) e++;
            printf(" %u:%zu", f.v[k], e - k);
            k = e;
        }
        putchar('\n');
    }
    free(f.v);
    cli_free_rows(rows, n);
    return 0;
}

int app_guard_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(guard_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cli_opts o;
    if (cli_parse(argc, argv, &o) != 0) return 2;
    const char *cmd = argv[1];
    if (strcmp(cmd, "scan") == 0) return guard_scan(&o);
    if (strcmp(cmd, "eval") == 0 || strcmp(cmd, "features") == 0) {
        if (!o.file) {
            fprintf(stderr, "brigade guard %s: FILE.jsonl is required\n", cmd);
            return 2;
        }
        return strcmp(cmd, "eval") == 0 ? guard_eval(&o) : guard_features_cmd(&o);
    }
    fprintf(stderr, "brigade guard: unknown command \"%s\"\n\n%s", cmd, guard_usage);
    return 2;
}
