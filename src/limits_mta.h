/* limits_mta.h — every hard limit of clearmta in one place, each with its reason. Configurable
 * limits have their default here and their bound; the config may lower, never raise, a bound. */
#ifndef CLEARMTA_LIMITS_H
#define CLEARMTA_LIMITS_H

/* RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF. */
#define LIMIT_COMMAND_LINE 512

/* RFC 5321 §4.5.3.1.4 allows extensions to lengthen MAIL/RCPT lines; with SIZE, BODY, SMTPUTF8,
 * RET, ENVID (100 xtext chars), NOTIFY and ORCPT (500 chars) a line can reach about 1000. */
#define LIMIT_MAIL_RCPT_LINE 1100

/* RFC 4954 §4: an AUTH command line or SASL response line may be up to 12288 octets. */
#define LIMIT_AUTH_LINE 12288

/* RFC 5321 §4.5.3.1.1-3: local part 64, domain 255, path 256 octets. We accept local parts up to
 * the path limit because real senders exceed 64 and the limit protects nothing of ours. */
#define LIMIT_LOCAL_PART 256
#define LIMIT_DOMAIN 255
#define LIMIT_PATH 256

/* RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF. Longer lines in DATA
 * are kept as they are (never split, never truncated); the limit only caps our per-line state. */
#define LIMIT_TEXT_LINE 1000

/* RFC 3461 §4.2: ENVID at most 100 characters; §4.2 ORCPT at most 500. */
#define LIMIT_ENVID 100
#define LIMIT_ORCPT 500

/* RFC 5321 §4.5.3.1.8 requires accepting at least 100 recipients. */
#define LIMIT_RECIPIENTS_DEFAULT 100
#define LIMIT_RECIPIENTS_MAX 10000
/* Received: fields a message may carry (max_hops): RFC 5321 §6.3 advises at least 100. */
#define LIMIT_HOPS_DEFAULT 100
#define LIMIT_HOPS_MIN 10
#define LIMIT_HOPS_MAX 1000

/* RCPTs past the recipient limit in one transaction before each further one counts as an error
 * (toward max_errors, then 421). A pipelining client legitimately sends more than the limit and
 * gets 452 for the extra ones (RFC 5321 §4.5.3.1.10), so a 452 is no error at first; without a
 * bound a client could send RCPTs for ever. 1000, as Postfix's smtpd_recipient_overshoot_limit:
 * far above any real client's batch. */
#define LIMIT_RCPT_OVERSHOOT_DEFAULT 1000
#define LIMIT_RCPT_OVERSHOOT_MAX 1000000

/* Message size: default 10 MiB (SIZE advertised); the bound keeps a size_t count far from
 * overflow and a queue file within what a Maildir reader handles. */
#define LIMIT_MESSAGE_SIZE_DEFAULT 10485760UL
#define LIMIT_MESSAGE_SIZE_MAX (1UL << 31)

/* Errors in one session before "421 4.7.0 too many errors" and close: a broken or probing
 * client gets a few chances, then costs nothing more. */
#define LIMIT_SESSION_ERRORS_DEFAULT 10

/* RFC 5321 §4.5.3.2 timeouts (seconds): initial 220 wait 5 min, MAIL 5 min, RCPT 5 min,
 * DATA initiation 2 min, data block 3 min, DATA termination 10 min; the server waits 5 min for
 * the next command. */
#define LIMIT_TIMEOUT_COMMAND_DEFAULT 300
#define LIMIT_TIMEOUT_DATA_DEFAULT 180

/* Concurrent connections, global and per client IP address. */
#define LIMIT_CONNECTIONS_DEFAULT 10000
#define LIMIT_CONNECTIONS_PER_IP_DEFAULT 100

/* Free space below which MAIL gets 452 4.3.1 (bytes): room for one maximal message and slack. */
#define LIMIT_MIN_FREE_DISK_DEFAULT (64UL * 1024 * 1024)

/* Bytes a client may pipeline ahead of our replies before we stop reading: bounds the memory a
 * session holds for unread commands (RFC 2920 lets clients send a whole batch). */
#define LIMIT_PIPELINE_INPUT (64 * 1024)

/* Reply bytes a session may have waiting to be sent before it stops taking pipelined command
 * lines (they stay in the bounded input above until the client reads): without it a client that
 * pipelines short commands and never reads (64 KiB of "HELP") makes a session answer all of
 * them at once, megabytes of replies held per connection. 16 KiB holds the replies to a whole
 * pipelined batch of LIMIT_RECIPIENTS_DEFAULT recipients (about 8 KiB with long addresses), so a
 * client that reads is never paused, and it is the kernel's initial TCP send buffer
 * (tcp_wmem), which takes it in one write: past it the socket buffers, not our memory, absorb
 * a flood, and TCP's flow control holds the client back. */
#define LIMIT_PENDING_OUTPUT (16 * 1024)

/* Seconds a shutting-down server waits for transactions in flight before closing them. */
#define LIMIT_SHUTDOWN_GRACE 30

#endif
