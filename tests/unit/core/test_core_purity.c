/* test_core_purity.c — checks invariant 1, docs/architecture.md mechanically: the agent
 * core does no I/O. Every file in src/core/ may include only cJSON, the C
 * library's string/memory/stdlib/stdio headers, the freestanding type
 * headers and core/ headers, and may call none of the functions that reach
 * files, sockets, the environment, clocks or randomness. The checker itself
 * is tested on bad snippets first, so a broken checker cannot pass. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifndef BRIGADE_SOURCE_ROOT
#define BRIGADE_SOURCE_ROOT "."
#endif

static const char *const allowed_system[] = {
    "cjson/cJSON.h", "string.h", "stdlib.h", "stdio.h", "stddef.h", "stdint.h", "stdbool.h",
};

/* Calls that would mean I/O, ambient state, time or randomness. stdio.h is
 * allowed for snprintf alone. */
static const char *const forbidden_calls[] = {
    "fopen", "freopen", "fdopen", "fclose", "fread", "fwrite", "fgets", "fputs", "fputc", "fgetc",
    "fprintf", "printf", "vprintf", "vfprintf", "puts", "putchar", "getchar", "scanf", "fscanf",
    "sscanf", "perror", "remove", "rename", "tmpfile", "tmpnam", "fflush", "setvbuf",
    "open", "read", "write", "close", "socket", "connect", "bind", "listen", "accept", "send",
    "recv", "getenv", "secure_getenv", "setenv", "putenv", "system", "popen", "exec", "fork",
    "dlopen", "time", "clock", "clock_gettime", "gettimeofday", "localtime", "gmtime", "rand",
    "srand", "random", "srandom", "getrandom", "arc4random", "exit", "_exit", "atexit", "signal",
    "raise", "sleep", "usleep", "nanosleep",
};

/* Blanks out comments and string/char literals so words in them (a comment
 * mentioning fopen) are not taken for code; keeps #include lines intact. */
static void strip(char *s)
{
    for (char *p = s; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            char *end = strstr(p + 2, "*/");
            char *stop = end ? end + 2 : p + strlen(p);
            for (; p < stop; p++)
                if (*p != '\n')
                    *p = ' ';
            p--;
        } else if (p[0] == '/' && p[1] == '/') {
            for (; *p && *p != '\n'; p++)
                *p = ' ';
            p--;
        } else if (*p == '"' || *p == '\'') {
            /* An include's "core/step.h" is a string literal too: leave the
             * preprocessor lines alone, they are checked separately. */
            char *line = p;
            while (line > s && line[-1] != '\n')
                line--;
            while (*line == ' ' || *line == '\t')
                line++;
            if (*line == '#')
                continue;
            char q = *p++;
            for (; *p && *p != q; p++) {
                if (*p == '\\' && p[1])
                    *p++ = ' ';
                *p = ' ';
            }
            if (!*p)
                return;
        }
    }
}

/* Returns 0 when `text` (one source file) is pure; else 1 with `why` set. */
static int purity_check(const char *text, char *why, size_t whylen)
{
    char *s = strdup(text);
    assert_non_null(s);
    strip(s);
    int bad = 0;
    for (char *line = s; line && *line && !bad; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '#')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "include", 7) != 0)
            continue;
        p += 7;
        while (*p == ' ' || *p == '\t')
            p++;
        char close = *p == '<' ? '>' : *p == '"' ? '"' : 0;
        char *end = close ? strchr(p + 1, close) : NULL;
        char *nl = strchr(p, '\n');
        if (!close || !end || (nl && end > nl)) {
            snprintf(why, whylen, "unrecognized #include form");
            bad = 1;
            break;
        }
        size_t len = (size_t)(end - p - 1);
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)len, p + 1);
        int ok = 0;
        if (close == '"') {
            ok = strncmp(name, "core/", 5) == 0 && !strstr(name, "..");
        } else {
            for (size_t i = 0; i < sizeof(allowed_system) / sizeof(allowed_system[0]); i++)
                ok |= strcmp(name, allowed_system[i]) == 0;
        }
        if (!ok) {
            snprintf(why, whylen, "includes %c%s%c", close == '>' ? '<' : '"', name, close);
            bad = 1;
        }
    }
    /* Identifiers followed by '(' (calls, or declarations of the same). */
    for (char *p = s; *p && !bad; p++) {
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            continue;
        if (p > s && (p[-1] == '_' || p[-1] == '.' || (p[-1] == '>' && p > s + 1 && p[-2] == '-') ||
                      (p[-1] >= '0' && p[-1] <= '9') || (p[-1] >= 'a' && p[-1] <= 'z') ||
                      (p[-1] >= 'A' && p[-1] <= 'Z')))
            continue; /* middle of an identifier, or a member */
        char *q = p;
        while (*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
               (*q >= '0' && *q <= '9'))
            q++;
        char *r = q;
        while (*r == ' ' || *r == '\t')
            r++;
        if (*r == '(') {
            for (size_t i = 0; i < sizeof(forbidden_calls) / sizeof(forbidden_calls[0]); i++) {
                size_t n = strlen(forbidden_calls[i]);
                if ((size_t)(q - p) == n && strncmp(p, forbidden_calls[i], n) == 0) {
                    snprintf(why, whylen, "calls %s()", forbidden_calls[i]);
                    bad = 1;
                    break;
                }
            }
        }
        p = q - 1;
    }
    free(s);
    return bad;
}

static void test_checker_catches_violations(void **unused)
{
    (void)unused;
    char why[160];
    const char *bad[] = {
        "#include <sys/socket.h>\nint x;\n",
        "#include <stdio.h>\n#  include <time.h>\n",
        "#include \"store/store.h\"\n",
        "#include \"../store/store.h\"\n",
        "#include \"core/../util/log.h\"\n",
        "#include HEADER\n",
        "void f(void) { FILE *f = fopen(\"x\", \"r\"); (void)f; }\n",
        "int g(void) { return rand(); }\n",
        "long h(void) { return time (0); }\n",
        "char *e(void) { return getenv(\"HOME\"); }\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (!purity_check(bad[i], why, sizeof(why)))
            fail_msg("checker passed a violation: %s", bad[i]);
        assert_true(why[0] != '\0');
    }
    const char *good =
        "/* fopen(), time() and <sys/socket.h> in a comment are fine */\n"
        "#include <string.h>\n#include <cjson/cJSON.h>\n#include \"core/step.h\"\n"
        "// rand() in a line comment\n"
        "static const char *s = \"getenv(x) in a string\";\n"
        "int f(struct st *p) { return p->read(1) + snprintf(0, 0, \"%d\", 1) + my_time(2); }\n";
    assert_int_equal(purity_check(good, why, sizeof(why)), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_core_sources_are_pure(void **unused)
{
    (void)unused;
    const char *dir = BRIGADE_SOURCE_ROOT "/src/core";
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s", dir);
    int files = 0, c_files = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        int is_c = n > 2 && strcmp(de->d_name + n - 2, ".c") == 0;
        int is_h = n > 2 && strcmp(de->d_name + n - 2, ".h") == 0;
        if (!is_c && !is_h)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        char *text = slurp(path);
        char why[160] = "";
        if (purity_check(text, why, sizeof(why)))
            fail_msg("src/core/%s %s: the core must not do I/O (invariant 1, docs/architecture.md)",
                     de->d_name, why);
        /* Each file states the rule at its top. */
        if (!strstr(text, "Includes:"))
            fail_msg("src/core/%s lacks the 'Includes:' line in its top comment", de->d_name);
        free(text);
        files++;
        c_files += is_c;
    }
    closedir(d);
    /* step.c, context.c, toolcall_core.c at least: a wrong path must not pass. */
    assert_true(c_files >= 3);
    assert_true(files >= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_catches_violations),
        cmocka_unit_test(test_core_sources_are_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
