/*
 * ICMP datagram sockets for the Ping worker: a Node-API addon in plain C (node_api.h, uv.h, POSIX sockets).
 *
 * It only moves datagrams. The ICMP protocol (building echo requests, checksums, parsing and matching
 * replies) lives in TypeScript (src/icmp-packet.ts, src/pinger.ts), where it is unit-tested.
 *
 *   open(family 4|6, onMessage, mode?)  -> { handle, kind: 'dgram' | 'raw', ident }
 *       mode 'auto' (default) tries SOCK_DGRAM (unprivileged ping socket; needs the gid in
 *       net.ipv4.ping_group_range), then SOCK_RAW (needs CAP_NET_RAW); 'dgram' or 'raw' tries only that one.
 *       Throws an Error whose code is the errno name (and whose message names both attempts) when none opens.
 *       ident: the echo identifier the kernel writes into every request of a DGRAM socket (its "port"); -1 for
 *       RAW, where the caller picks its own.
 *       onMessage(payload: Buffer, source: string, ttl: number, ageMs: number) is called for every datagram:
 *       payload starts at the ICMP header (for IPv4 RAW sockets the IP header is stripped here), ttl is the
 *       IPv4 TTL / IPv6 hop limit or -1, ageMs is how long the datagram waited in the socket (kernel receive
 *       timestamp to the read, so callers can take event-loop delay out of a round-trip time), or 0.
 *   send(handle, packet: Buffer, address: string) -> 0 | 'EHOSTUNREACH' | ...   (errno name on failure)
 *   close(handle)  stops polling, closes the descriptor and releases the callback; safe to call twice.
 *
 * The descriptor is non-blocking and watched with a uv_poll_t on the environment's loop. The poll handle is
 * unreferenced: an open socket alone never keeps the process alive (callers keep timers for pending probes).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define RECV_BUFFER 4096
#define MAX_PER_WAKEUP 256 /* datagrams read per readiness event before yielding to the loop */

typedef struct icmp_socket {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int family;
  int raw;
  int closed;         /* close() ran: no more sends or callbacks */
  int handle_closing; /* uv_close issued for poll */
  int finalized;      /* the JS handle was collected */
  napi_ref callback;
  napi_async_context async_context;
} icmp_socket;

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "icmp addon: " #call " failed");    \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static const char* errno_name(int err) { return uv_err_name(uv_translate_sys_error(err)); }

static void maybe_free(icmp_socket* s) {
  if (s->finalized && (s->handle_closing == 0 || s->poll.data == NULL)) free(s);
}

static void on_poll_closed(uv_handle_t* handle) {
  icmp_socket* s = (icmp_socket*)handle->data;
  handle->data = NULL; /* marks the poll handle as fully closed */
  maybe_free(s);
}

/* Stops everything that can call back into JS; idempotent. `env_alive` is 0 from the env cleanup hook. */
static void shutdown_socket(icmp_socket* s, int env_alive) {
  if (s->closed) return;
  s->closed = 1;
  if (!s->handle_closing) {
    s->handle_closing = 1;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t*)&s->poll, on_poll_closed);
  }
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  if (env_alive) {
    if (s->callback != NULL) napi_delete_reference(s->env, s->callback);
    if (s->async_context != NULL) napi_async_destroy(s->env, s->async_context);
  }
  s->callback = NULL;
  s->async_context = NULL;
}

static void cleanup_hook(void* arg) {
  icmp_socket* s = (icmp_socket*)arg;
  shutdown_socket(s, 0);
}

static void finalize_socket(napi_env env, void* data, void* hint) {
  (void)hint;
  icmp_socket* s = (icmp_socket*)data;
  if (!s->closed) napi_remove_env_cleanup_hook(env, cleanup_hook, s);
  shutdown_socket(s, 1);
  s->finalized = 1;
  maybe_free(s);
}

/* Returns the length of the ICMP message in buf (shifting it to the start), or -1 to drop the datagram. */
static ssize_t strip_ipv4_header(unsigned char* buf, ssize_t n, int* ttl) {
  if (n < 20 || (buf[0] >> 4) != 4) return -1;
  size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
  if (ihl < 20 || (ssize_t)ihl > n) return -1;
  if (*ttl < 0) *ttl = buf[8];
  memmove(buf, buf + ihl, (size_t)n - ihl);
  return n - (ssize_t)ihl;
}

static void deliver(icmp_socket* s, unsigned char* data, size_t len, const char* source, int ttl, double age_ms) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[4], result;
  void* copy;
  if (s->callback != NULL && napi_get_reference_value(env, s->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok && /* napi_make_callback needs an object receiver */
      
      napi_create_buffer_copy(env, len, data, &copy, &argv[0]) == napi_ok &&
      napi_create_string_utf8(env, source, NAPI_AUTO_LENGTH, &argv[1]) == napi_ok &&
      napi_create_int32(env, ttl, &argv[2]) == napi_ok && napi_create_double(env, age_ms, &argv[3]) == napi_ok) {
    napi_status status = napi_make_callback(env, s->async_context, recv, cb, 4, argv, &result);
    if (status == napi_pending_exception) {
      /* An exception in the JS callback: report it as uncaught, as an event listener's would be. */
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static double age_of(struct msghdr* msg) {
  struct cmsghdr* c;
  for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
#ifdef SCM_TIMESTAMPNS
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec stamp, now;
      memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
      if (clock_gettime(CLOCK_REALTIME, &now) != 0) return 0;
      double age = (double)(now.tv_sec - stamp.tv_sec) * 1e3 + (double)(now.tv_nsec - stamp.tv_nsec) / 1e6;
      return age > 0 ? age : 0;
    }
#endif
  }
  return 0;
}

static int ttl_of(struct msghdr* msg) {
  struct cmsghdr* c;
  for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    int value;
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
      memcpy(&value, CMSG_DATA(c), sizeof value);
      return value;
    }
#ifdef IPV6_HOPLIMIT
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
      memcpy(&value, CMSG_DATA(c), sizeof value);
      return value;
    }
#endif
  }
  return -1;
}

static void on_readable(uv_poll_t* handle, int status, int events) {
  (void)events;
  icmp_socket* s = (icmp_socket*)handle->data;
  if (s == NULL || s->closed) return;
  if (status < 0) {
    /* libuv stops the watcher on POLLERR. Clear a pending socket error and watch again. */
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
    return;
  }
  unsigned char buf[RECV_BUFFER];
  union {
    struct cmsghdr align;
    unsigned char bytes[256];
  } control;
  for (int i = 0; i < MAX_PER_WAKEUP && !s->closed; i++) {
    struct sockaddr_storage from;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    ssize_t n = recvmsg(s->fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN: drained (anything else: nothing to read now either) */
    }
    if ((size_t)n > sizeof buf) n = sizeof buf; /* MSG_TRUNC on some systems reports the full length */
    int ttl = ttl_of(&msg);
    double age = age_of(&msg);
    if (s->family == 4 && s->raw) {
      n = strip_ipv4_header(buf, n, &ttl);
      if (n < 0) continue;
    }
    char source[INET6_ADDRSTRLEN] = "";
    if (from.ss_family == AF_INET) {
      inet_ntop(AF_INET, &((struct sockaddr_in*)&from)->sin_addr, source, sizeof source);
    } else if (from.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6*)&from)->sin6_addr, source, sizeof source);
    }
    deliver(s, buf, (size_t)n, source, ttl, age);
  }
}

static int set_int(int fd, int level, int name, int value) { return setsockopt(fd, level, name, &value, sizeof value); }

/* Opens one socket of `type`; returns the fd or -errno. */
static int open_fd(int family, int type, int* ident) {
  int domain = family == 6 ? AF_INET6 : AF_INET;
  int proto = family == 6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
  int fd = socket(domain, type, proto);
  if (fd < 0) return -errno;
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  if (family == 6) {
#ifdef IPV6_RECVHOPLIMIT
    set_int(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
#endif
  } else {
    set_int(fd, IPPROTO_IP, IP_RECVTTL, 1);
  }
#ifdef SO_TIMESTAMPNS
  set_int(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1);
#endif
  *ident = -1;
  if (type == SOCK_DGRAM) {
    /* Bind to "port" 0: the kernel picks a free echo identifier for this socket now, so we can report it. */
    struct sockaddr_storage addr;
    socklen_t len;
    memset(&addr, 0, sizeof addr);
    if (family == 6) {
      ((struct sockaddr_in6*)&addr)->sin6_family = AF_INET6;
      len = sizeof(struct sockaddr_in6);
    } else {
      ((struct sockaddr_in*)&addr)->sin_family = AF_INET;
      len = sizeof(struct sockaddr_in);
    }
    if (bind(fd, (struct sockaddr*)&addr, len) == 0 && getsockname(fd, (struct sockaddr*)&addr, &len) == 0) {
      *ident = ntohs(family == 6 ? ((struct sockaddr_in6*)&addr)->sin6_port : ((struct sockaddr_in*)&addr)->sin_port);
    }
  } else if (family == 6) {
    /* A raw ICMPv6 socket sees all ICMPv6 on the host: let through only echo replies and errors about probes. */
    struct icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &filter);
    setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
  } else {
#ifdef __linux__
    /* Linux's ICMP_FILTER (SOL_RAW 255, option 1): a bit set blocks that type. Pass echo reply (0),
       destination unreachable (3) and time exceeded (11); our own echo requests on loopback stay out. */
    unsigned int blocked = ~((1u << 0) | (1u << 3) | (1u << 11));
    setsockopt(fd, 255, 1, &blocked, sizeof blocked);
#endif
  }
  return fd;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t family = 0;
  napi_valuetype cb_type = napi_undefined;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &family) != napi_ok || (family != 4 && family != 6) ||
      napi_typeof(env, argv[1], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, NULL, "open(family: 4 | 6, onMessage: function, mode?: 'auto' | 'dgram' | 'raw')");
    return NULL;
  }
  char mode[8] = "auto";
  if (argc >= 3) {
    napi_valuetype t;
    CHECK(napi_typeof(env, argv[2], &t));
    if (t == napi_string) CHECK(napi_get_value_string_utf8(env, argv[2], mode, sizeof mode, NULL));
  }
  int try_dgram = strcmp(mode, "raw") != 0;
  int try_raw = strcmp(mode, "dgram") != 0;

  int ident = -1, fd = -1, raw = 0, dgram_err = 0, raw_err = 0;
  if (try_dgram) {
    fd = open_fd(family, SOCK_DGRAM, &ident);
    if (fd < 0) dgram_err = -fd;
  }
  if (fd < 0 && try_raw) {
    fd = open_fd(family, SOCK_RAW, &ident);
    if (fd < 0) raw_err = -fd;
    else raw = 1;
  }
  if (fd < 0) {
    char message[160];
    int err = raw_err ? raw_err : dgram_err;
    snprintf(message, sizeof message, "no ICMP socket for IPv%d:%s%s%s%s", family, try_dgram ? " dgram " : "",
             try_dgram ? errno_name(dgram_err) : "", try_raw ? " raw " : "", try_raw ? errno_name(raw_err) : "");
    napi_throw_error(env, errno_name(err), message);
    return NULL;
  }

  icmp_socket* s = (icmp_socket*)calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  s->env = env;
  s->fd = fd;
  s->family = family;
  s->raw = raw;
  uv_loop_t* loop;
  napi_value resource, resource_name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init_socket(loop, &s->poll, fd) != 0) {
    close(fd);
    free(s);
    napi_throw_error(env, NULL, "icmp addon: cannot watch the socket on the event loop");
    return NULL;
  }
  s->poll.data = s;
  uv_unref((uv_handle_t*)&s->poll);
  if (napi_create_reference(env, argv[1], 1, &s->callback) != napi_ok ||
      napi_create_string_utf8(env, "ICMPSOCKET", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_object(env, &resource) != napi_ok ||
      napi_async_init(env, resource, resource_name, &s->async_context) != napi_ok ||
      uv_poll_start(&s->poll, UV_READABLE, on_readable) != 0) {
    shutdown_socket(s, 1);
    s->finalized = 1;
    maybe_free(s);
    napi_throw_error(env, NULL, "icmp addon: cannot start the socket");
    return NULL;
  }
  napi_add_env_cleanup_hook(env, cleanup_hook, s);

  napi_value result, handle, kind, id;
  if (napi_create_external(env, s, finalize_socket, NULL, &handle) != napi_ok) {
    napi_remove_env_cleanup_hook(env, cleanup_hook, s);
    shutdown_socket(s, 1);
    s->finalized = 1;
    maybe_free(s);
    napi_throw_error(env, NULL, "icmp addon: cannot create the handle");
    return NULL;
  }
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_string_utf8(env, raw ? "raw" : "dgram", NAPI_AUTO_LENGTH, &kind));
  CHECK(napi_create_int32(env, ident, &id));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  CHECK(napi_set_named_property(env, result, "kind", kind));
  CHECK(napi_set_named_property(env, result, "ident", id));
  return result;
}

static icmp_socket* socket_of(napi_env env, napi_value value) {
  napi_valuetype t;
  void* data = NULL;
  if (napi_typeof(env, value, &t) != napi_ok || t != napi_external || napi_get_value_external(env, value, &data) != napi_ok) {
    return NULL;
  }
  return (icmp_socket*)data;
}

static napi_value string_value(napi_env env, const char* s) {
  napi_value v;
  return napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) == napi_ok ? v : NULL;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  icmp_socket* s = argc == 3 ? socket_of(env, argv[0]) : NULL;
  bool is_buffer = false;
  if (s == NULL || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, NULL, "send(handle, packet: Buffer, address: string)");
    return NULL;
  }
  if (s->closed) return string_value(env, "EBADF");
  void* data;
  size_t len;
  char address[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t address_len = 0;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &len));
  if (napi_get_value_string_utf8(env, argv[2], address, sizeof address, &address_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "send: address must be a string");
    return NULL;
  }
  struct sockaddr_storage to;
  socklen_t to_len;
  memset(&to, 0, sizeof to);
  if (s->family == 6) {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&to;
    char* zone = strchr(address, '%');
    if (zone != NULL) {
      *zone++ = '\0';
      unsigned int index = if_nametoindex(zone);
      a->sin6_scope_id = index != 0 ? index : (unsigned int)strtoul(zone, NULL, 10);
      if (a->sin6_scope_id == 0) return string_value(env, "EINVAL");
    }
    a->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, address, &a->sin6_addr) != 1) return string_value(env, "EINVAL");
    to_len = sizeof *a;
  } else {
    struct sockaddr_in* a = (struct sockaddr_in*)&to;
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, address, &a->sin_addr) != 1) return string_value(env, "EINVAL");
    to_len = sizeof *a;
  }
  ssize_t sent;
  do {
    sent = sendto(s->fd, data, len, 0, (struct sockaddr*)&to, to_len);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return string_value(env, errno_name(errno));
  napi_value zero;
  CHECK(napi_create_int32(env, 0, &zero));
  return zero;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  icmp_socket* s = argc == 1 ? socket_of(env, argv[0]) : NULL;
  if (s == NULL) {
    napi_throw_type_error(env, NULL, "close(handle)");
    return NULL;
  }
  if (!s->closed) {
    napi_remove_env_cleanup_hook(env, cleanup_hook, s);
    shutdown_socket(s, 1);
  }
  napi_value undefined;
  CHECK(napi_get_undefined(env, &undefined));
  return undefined;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
