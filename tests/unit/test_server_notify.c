/* Unit tests of resnetd's systemd notifications (server/notify.c), driven as
 * systemd drives them: a unix datagram socket named by NOTIFY_SOCKET, and
 * WATCHDOG_USEC/WATCHDOG_PID for the watchdog. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"

static char dir[64];
static char path[96];
static int sock = -1;

/* A fresh socket at dir/notify, named by NOTIFY_SOCKET, as systemd sets up. */
static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/test_notify.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/notify", dir);
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (bind(sock, (struct sockaddr *)&sa, sizeof sa) < 0)
        return -1;
    /* nothing may block the tests for long */
    struct timeval tv = {2, 0};
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setenv("NOTIFY_SOCKET", path, 1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    return 0;
}

static int teardown(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    if (sock >= 0)
        close(sock);
    sock = -1;
    unlink(path);
    rmdir(dir);
    return 0;
}

/* The next datagram, NUL-terminated, or "" after the receive timeout. */
static const char *next_msg(void)
{
    static char buf[1024];
    ssize_t n = recv(sock, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int pending(void)
{
    char c;
    return recv(sock, &c, 1, MSG_DONTWAIT | MSG_PEEK) >= 0;
}

static void test_messages(void **state)
{
    assert_int_equal(notify_ready(), 1);
    assert_string_equal(next_msg(), "READY=1");

    assert_int_equal(notify_status("serving %d model%s", 2, "s"), 1);
    assert_string_equal(next_msg(), "STATUS=serving 2 models");

    /* a newline would start a second assignment: it becomes a space */
    assert_int_equal(notify_status("reload failed:\nbad file"), 1);
    assert_string_equal(next_msg(), "STATUS=reload failed: bad file");

    assert_int_equal(notify_stopping(), 1);
    assert_string_equal(next_msg(), "STOPPING=1");

    assert_int_equal(notify_watchdog(), 1);
    assert_string_equal(next_msg(), "WATCHDOG=1");
}

static void test_reloading(void **state)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long before = (unsigned long long)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
    assert_int_equal(notify_reloading(), 1);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long after = (unsigned long long)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;

    const char *m = next_msg();
    assert_true(strncmp(m, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
    char *end;
    unsigned long long usec = strtoull(m + 27, &end, 10);
    assert_true(*end == '\0');
    assert_true(usec >= before && usec <= after);

    assert_int_equal(notify_ready(), 1);
    assert_string_equal(next_msg(), "READY=1");
}

/* Not run by systemd: every call is a quiet no-op. */
static void test_no_socket(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_ready(), 0);
    assert_int_equal(notify_status("x"), 0);
    assert_int_equal(notify_reloading(), 0);
    assert_int_equal(notify_stopping(), 0);
    assert_int_equal(notify_watchdog(), 0);
    assert_int_equal(notify_watchdog_usec(), 0);
    assert_int_equal(notify_watchdog_start(NULL, NULL), 0); /* no thread, alive never called */
    notify_watchdog_stop();
    assert_false(pending());
}

/* A socket that went away is an error to log, not a crash. */
static void test_socket_gone(void **state)
{
    setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1);
    assert_true(notify_ready() < 0);
}

static void test_watchdog_usec(void **state)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());

    assert_int_equal(notify_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal(notify_watchdog_usec(), 30000000);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_watchdog_usec(), 30000000);
    /* meant for another process (the variables were inherited): off */
    setenv("WATCHDOG_PID", "1", 1);
    assert_int_equal(notify_watchdog_usec(), 0);
    setenv("WATCHDOG_PID", pid, 1);
    setenv("WATCHDOG_USEC", "garbage", 1);
    assert_int_equal(notify_watchdog_usec(), 0);
}

static int alive_calls;
static int alive_value;
static int alive(void *arg)
{
    __atomic_add_fetch(&alive_calls, 1, __ATOMIC_SEQ_CST);
    return __atomic_load_n((int *)arg, __ATOMIC_SEQ_CST);
}

static int count_pings(int ms)
{
    int n = 0;
    struct timeval tv = {0, 10000};
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int t = 0; t < ms; t += 10) {
        char buf[64];
        ssize_t r;
        while ((r = recv(sock, buf, sizeof buf - 1, MSG_DONTWAIT)) > 0) {
            buf[r] = '\0';
            assert_string_equal(buf, "WATCHDOG=1");
            n++;
        }
        usleep(10000);
    }
    return n;
}

/* Pings every half period while alive() says so; none while it says stuck. */
static void test_watchdog_thread(void **state)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_USEC", "100000", 1); /* 100 ms: a ping every 50 ms */
    setenv("WATCHDOG_PID", pid, 1);

    alive_value = 1;
    assert_int_equal(notify_watchdog_start(alive, &alive_value), 0);
    int n = count_pings(500);
    assert_in_range(n, 4, 40); /* about 10; loose for loaded machines */

    __atomic_store_n(&alive_value, 0, __ATOMIC_SEQ_CST);
    count_pings(60); /* a ping may have been on its way */
    int calls = __atomic_load_n(&alive_calls, __ATOMIC_SEQ_CST);
    assert_int_equal(count_pings(300), 0);
    assert_true(__atomic_load_n(&alive_calls, __ATOMIC_SEQ_CST) > calls); /* still asked */

    __atomic_store_n(&alive_value, 1, __ATOMIC_SEQ_CST);
    assert_true(count_pings(200) >= 2);

    /* stop returns at once, not after the period; nothing is sent after it */
    struct timespec t0, t1;
    setenv("WATCHDOG_USEC", "20000000", 1);
    notify_watchdog_stop();
    assert_int_equal(notify_watchdog_start(alive, &alive_value), 0); /* 10 s period */
    count_pings(30);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    notify_watchdog_stop();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    assert_true(s < 0.5);
    assert_int_equal(count_pings(100), 0);
    notify_watchdog_stop(); /* twice is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reloading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_usec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
