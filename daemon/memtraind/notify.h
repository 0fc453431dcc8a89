/* notify.h: tell systemd how the daemon is doing (sd_notify without
 * libsystemd).
 *
 * With Type=notify systemd sets $NOTIFY_SOCKET to an AF_UNIX datagram
 * socket (a path, or an abstract name written "@name") and waits for
 * "READY=1" before it counts the service as started. Other states the daemon
 * sends: "STATUS=2 running, 1 queued" (shown by systemctl status),
 * "RELOADING=1" at the start of a SIGHUP reload and "READY=1" at its end,
 * "STOPPING=1" when shutdown begins. Several may go in one datagram, one per
 * line. Outside systemd every call is a no-op that returns 0.
 *
 * Workers must not inherit the variable's meaning: the unit sets
 * NotifyAccess=main, so systemd ignores anything but the daemon itself. */
#ifndef MT_NOTIFY_H
#define MT_NOTIFY_H

/* Send `state` as one datagram to $NOTIFY_SOCKET. 0 when sent or when the
 * variable is unset or empty; -errno otherwise (-EINVAL for an address that
 * is neither absolute nor abstract, or too long; -EAFNOSUPPORT for other
 * kinds such as vsock: addresses). */
int notify_send(const char *state);

/* notify_send of a printf-formatted state ("STATUS=%u running"). */
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "RELOADING=1" with MONOTONIC_USEC (which systemd 253's Type=notify-reload
 * requires and older versions ignore). Send "READY=1" when done. */
int notify_reloading(void);

#endif
