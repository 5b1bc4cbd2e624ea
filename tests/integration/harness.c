/* harness.c - see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"

static void
nap_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

char *
proc_log(const struct proc *p)
{
    FILE *f = fopen(p->logpath, "rb");
    if (f == NULL)
        return strdup("");
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

int
proc_wait_log(const struct proc *p, const char *needle, int timeout_ms)
{
    double end = clock_mono_ms() + timeout_ms;
    do {
        char *log = proc_log(p);
        int found = log && strstr(log, needle) != NULL;
        free(log);
        if (found)
            return 1;
        nap_ms(5);
    } while (clock_mono_ms() < end);
    return 0;
}

static int
parse_port(const char *log)
{
    const char *m = strstr(log, "listening on 127.0.0.1:");
    return m ? atoi(m + strlen("listening on 127.0.0.1:")) : 0;
}

/* Forks argv with stdout and stderr into logpath and the extra
 * environment; the child's pid, or -1. */
static pid_t
spawn(char *const argv[], char *const env[], const char *logpath)
{
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        for (size_t i = 0; env && env[i]; i++)
            putenv(env[i]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd);
    return pid;
}

int
proc_start(struct proc *p, char *const argv[], char *const env[])
{
    static int seq;
    memset(p, 0, sizeof(p[0]));
    snprintf(p->logpath, sizeof(p->logpath), "/tmp/wagate-test-%d-%d.log",
             (int)getpid(), ++seq);
    p->pid = spawn(argv, env, p->logpath);
    if (p->pid < 0)
        return -1;
    double end = clock_mono_ms() + 10000;
    while (clock_mono_ms() < end) {
        char *log = proc_log(p);
        p->port = log ? parse_port(log) : 0;
        free(log);
        if (p->port > 0)
            return 0;
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return -1;
        }
        nap_ms(5);
    }
    kill(p->pid, SIGKILL); /* never said it listens: do not leave it */
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    return -1;
}

int
proc_run(char *const argv[], char *const env[], char *out, size_t outlen)
{
    struct proc p;
    memset(&p, 0, sizeof(p));
    snprintf(p.logpath, sizeof(p.logpath), "/tmp/wagate-run-%d.log",
             (int)getpid());
    pid_t pid = spawn(argv, env, p.logpath);
    int st = 0, rc = -1;
    double end = clock_mono_ms() + 10000;
    while (pid > 0 && clock_mono_ms() < end) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            break;
        }
        nap_ms(5);
    }
    if (rc == -1 && pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    char *log = proc_log(&p);
    snprintf(out, outlen, "%s", log ? log : "");
    free(log);
    unlink(p.logpath);
    return rc;
}

int
proc_stop(struct proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    double end = clock_mono_ms() + timeout_ms;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid)
            break;
        if (r < 0 || clock_mono_ms() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            break;
        }
        nap_ms(5);
    }
    p->pid = 0;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* ---- HTTP ---- */

struct grow {
    char *p;
    size_t len;
};

static size_t
grow_cb(char *d, size_t s, size_t n, void *arg)
{
    struct grow *g = arg;
    char *q = realloc(g->p, g->len + s * n + 1);
    if (q == NULL)
        return 0;
    g->p = q;
    memcpy(g->p + g->len, d, s * n);
    g->len += s * n;
    g->p[g->len] = '\0';
    return s * n;
}

static size_t
header_cb(char *d, size_t s, size_t n, void *arg)
{
    struct grow *g = arg;
    if (s * n >= 5 && memcmp(d, "HTTP/", 5) == 0)
        g->len = 0; /* keep only the final response's block */
    return grow_cb(d, s, n, arg);
}

int
http_do(const char *method, const char *url, const char *const *headers,
        const char *body, size_t body_len, struct http_resp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *e = curl_easy_init();
    struct curl_slist *l = NULL;
    struct grow hb = {0}, bb = {0};
    for (size_t i = 0; headers && headers[i]; i++)
        l = curl_slist_append(l, headers[i]);
    l = curl_slist_append(l, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, grow_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &bb);
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)body_len);
    }
    double t0 = clock_mono_ms();
    CURLcode rc = curl_easy_perform(e);
    r->total_ms = clock_mono_ms() - t0;
    r->curl_error = (int)rc;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    r->headers = hb.p ? hb.p : strdup("");
    r->body = bb.p ? bb.p : strdup("");
    r->body_len = bb.len;
    curl_slist_free_all(l);
    curl_easy_cleanup(e);
    return rc == CURLE_OK ? 0 : -1;
}

void
http_free(struct http_resp *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

const char *
http_header(const struct http_resp *r, const char *name, char *out,
            size_t outlen)
{
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(line + ll - v);
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        line = eol ? eol + 2 : line + ll;
    }
    return NULL;
}

size_t
raw_exchange(int port, const char *req, size_t len, char *out, size_t outlen,
             int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t got = 0;
    out[0] = '\0';
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        goto done;
    if (write(fd, req, len) != (ssize_t)len)
        goto done;
    double end = clock_mono_ms() + timeout_ms;
    while (got + 1 < outlen && clock_mono_ms() < end) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        ssize_t n = read(fd, out + got, outlen - got - 1);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = '\0';
done:
    if (fd >= 0)
        close(fd);
    return got;
}

int
free_port(void)
{
    /* close-on-exec: the binaries started later need not hold it */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    if (fd < 0)
        return 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        close(fd);
        return 0;
    }
    return ntohs(a.sin_port); /* fd stays open: the port stays ours */
}

/* ---- sandbox ---- */

json_object *
hx_sandbox_requests(int sb_port)
{
    char url[128];
    struct http_resp r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_sandbox/requests",
             sb_port);
    if (http_do("GET", url, NULL, NULL, 0, &r) != 0) {
        http_free(&r);
        return NULL;
    }
    json_object *root = json_tokener_parse(r.body), *reqs = NULL;
    http_free(&r);
    if (root && json_object_object_get_ex(root, "requests", &reqs))
        json_object_get(reqs);
    json_object_put(root);
    return reqs;
}

int
hx_sandbox_count(int sb_port)
{
    json_object *reqs = hx_sandbox_requests(sb_port);
    int n = reqs ? (int)json_object_array_length(reqs) : -1;
    json_object_put(reqs);
    return n;
}

void
hx_sandbox_open_windows(int sb_port, int n)
{
    for (int i = 0; i < n; i++) {
        char body[128];
        snprintf(body, sizeof(body),
                 "{\"sender_id\":12,\"recipient_phone\":\"+1415557%04d\"}", i);
        ck_assert_int_eq(
            hx_sandbox_control(sb_port, "POST", "/_sandbox/inbound", body),
            204);
    }
    ck_assert_int_eq(
        hx_sandbox_control(sb_port, "DELETE", "/_sandbox/requests", NULL), 204);
}

void
hx_sandbox_seen(int sb_port, struct hx_seen *s)
{
    json_object *reqs = hx_sandbox_requests(sb_port);
    ck_assert_ptr_nonnull(reqs);
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        json_object *e = json_object_array_get_idx(reqs, i), *v;
        if (!json_object_object_get_ex(e, "path", &v) ||
            strcmp(json_object_get_string(v),
                   "/api/user/whatsapp/send-freeform") != 0)
            continue;
        int fault = json_object_object_get_ex(e, "fault", &v) &&
                    json_object_get_type(v) == json_type_string;
        s->faults += fault;
        if (!fault && json_object_object_get_ex(e, "status", &v) &&
            json_object_get_int(v) == 429)
            s->limited++;
        if (s->n < HX_SEEN_MAX && json_object_object_get_ex(e, "mono_ms", &v))
            s->t[s->n++] = json_object_get_double(v);
    }
    json_object_put(reqs);
}

int
hx_worst_window(const struct hx_seen *s, double *at)
{
    int worst = 0;
    for (int i = 0; i < s->n; i++) {
        int c = 0;
        for (int j = i; j < s->n && s->t[j] - s->t[i] < 1000.0; j++)
            c++;
        if (c > worst) {
            worst = c;
            if (at != NULL)
                *at = s->t[i] - s->t[0];
        }
    }
    return worst;
}

int
hx_sandbox_control(int sb_port, const char *method, const char *path,
                   const char *json)
{
    char url[256];
    struct http_resp r;
    const char *h[] = {"Content-Type: application/json", NULL};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sb_port, path);
    http_do(method, url, h, json, json ? strlen(json) : 0, &r);
    int st = (int)r.status;
    http_free(&r);
    return st;
}

static int
b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

char *
b64_decode(const char *in, size_t *len)
{
    size_t n = strlen(in), o = 0;
    char *out = malloc(n * 3 / 4 + 4);
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

const char *
hx_sandbox_req_header(json_object *req, const char *name)
{
    json_object *hs;
    if (!json_object_object_get_ex(req, "headers", &hs))
        return NULL;
    for (size_t i = 0; i < json_object_array_length(hs); i++) {
        json_object *pair = json_object_array_get_idx(hs, i);
        const char *k =
            json_object_get_string(json_object_array_get_idx(pair, 0));
        if (k && strcasecmp(k, name) == 0)
            return json_object_get_string(json_object_array_get_idx(pair, 1));
    }
    return NULL;
}

void
write_temp(const char *text, char *out, size_t outlen)
{
    snprintf(out, outlen, "/tmp/wagate-test-XXXXXX");
    int fd = mkstemp(out);
    if (fd < 0)
        return;
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n)
        out[0] = '\0';
    close(fd);
}

/* ---- fixtures ---- */

static const char *
bin_path(const char *var, const char *fallback)
{
    const char *v = getenv(var);
    return v && *v ? v : fallback;
}

int
harness_start_sandbox(struct proc *p, const char *rate,
                      const char *const *extra)
{
    char *argv[24] = {(char *)bin_path("SANDBOX_BIN", "./wagate-sandbox"),
                      "--listen", "127.0.0.1:0", "--api-key",
                      HARNESS_UPSTREAM_KEY, "--rate-limit", (char *)rate};
    size_t n = 7;
    for (size_t i = 0; extra && extra[i] && n < 23; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return proc_start(p, argv, NULL);
}

int
harness_start_gateway(struct proc *p, int sb_port, const char *extra,
                      char *conf, size_t conflen)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\",\n"
             "   \"timeout_ms\": 1500, \"connect_timeout_ms\": 500,\n"
             "   \"rate_limit_rps\": 10000, \"rate_limit_burst\": 10000},\n"
             " \"limits\": {\"client_timeout_ms\": 1000,"
             " \"max_body_bytes\": 4096}%s}\n",
             sb_port, extra ? extra : "");
    write_temp(text, conf, conflen);
    char *argv[] = {(char *)bin_path("WAGATE_BIN", "./wagate"), "-c", conf,
                    NULL};
    return proc_start(p, argv, env);
}

int
harness_post(int port, const char *path, const char *body,
             const char *const *headers, struct http_resp *r)
{
    const char *h[16] = {"Content-Type: application/json"};
    size_t n = 1;
    for (size_t i = 0; headers && headers[i] && n < 15; i++)
        h[n++] = headers[i];
    h[n] = NULL;
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    return http_do("POST", url, h, body, strlen(body), r);
}

int
harness_get(int port, const char *method, const char *path_query,
            const char *const *headers, struct http_resp *r)
{
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path_query);
    return http_do(method, url, headers, NULL, 0, r);
}

void
hx_add_cases(Suite *s, const struct hx_case *cases, size_t n, double timeout_s,
             void (*teardown)(void))
{
    for (size_t i = 0; i < n; i++) {
        if (cases[i].known && getenv("WAGATE_KNOWN_DEFECTS") == NULL) {
            fprintf(stderr, "SKIP %s (known defect; WAGATE_KNOWN_DEFECTS=1)\n",
                    cases[i].name);
            continue;
        }
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, timeout_s);
        if (teardown != NULL)
            tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
}

int
harness_run_suite(Suite *suite)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? 0 : 1;
}
