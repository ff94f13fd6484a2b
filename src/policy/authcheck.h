/* policy/authcheck.h — password verification off the event loop: crypt(3) costs milliseconds
 * by design, so worker threads run policy_users_verify and hand results back through an
 * eventfd (a base/workq.h work queue, as store/queue.h hands back commits). A success is
 * remembered (policy/authcache.h): the same name and password within its TTL are answered
 * without a worker, through the same eventfd. */
#ifndef CLEARMTA_POLICY_AUTHCHECK_H
#define CLEARMTA_POLICY_AUTHCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/users.h"

/* Verifications submitted and not yet handed back; beyond, submit refuses (the client gets
 * 454 4.7.0 and retries) instead of queueing minutes of crypt work. */
#define POLICY_AUTHCHECK_QUEUE 256u
/* Worker threads the server starts: the machine's cores are shared with the event loop and
 * the queue's sync thread. */
#define POLICY_AUTHCHECK_THREADS 2u

struct policy_authcheck;
struct policy_authcheck_job;

/* Runs on the loop thread, from policy_authcheck_process(), once per job not cancelled. */
typedef void policy_authcheck_fn(void *ctx, enum policy_auth_result result);

/* Starts threads workers (1 .. 16; 0 only for tests, see policy_authcheck_run_one). On failure
 * returns NULL with one line in err. */
struct policy_authcheck *policy_authcheck_new(unsigned threads, char *err, size_t errlen);

/* Stops the workers (waiting for verifications in progress) and frees everything. Callbacks of
 * jobs still queued or finished do not run: their sessions are gone by then. Safe on NULL. */
void policy_authcheck_free(struct policy_authcheck *ac);

/* An eventfd, readable when results wait: the loop watches it and calls
 * policy_authcheck_process(). Owned by ac. */
int policy_authcheck_event_fd(const struct policy_authcheck *ac);

/* On the loop thread: runs the callbacks of finished jobs, frees them. Never blocks. */
void policy_authcheck_process(struct policy_authcheck *ac);

/* Queues a verification of user/pass against users (which must outlive the job). user and pass
 * are copied (the copy is wiped once used), so the caller may wipe its own at once. Returns the
 * job, valid until its callback has run or it is cancelled; NULL when POLICY_AUTHCHECK_QUEUE
 * jobs are in flight or memory ran out: answer TEMPFAIL (454 4.7.0) at once. A user or pass
 * longer than struct smtp_sasl_creds holds verifies as an unknown user would (BAD, after a
 * crypt). Loop thread only. */
struct policy_authcheck_job *policy_authcheck_submit(struct policy_authcheck *ac,
                                                     const struct policy_users *users,
                                                     const char *user, const char *pass,
                                                     policy_authcheck_fn *done, void *ctx);

/* The connection went away: job's callback will not run and the job is freed later. Loop
 * thread only, and only before the callback has run. Safe on NULL. */
void policy_authcheck_cancel(struct policy_authcheck_job *job);

#ifdef CLEARMTA_TESTING
/* With 0 threads: verifies the oldest queued job on the calling thread and posts its result.
 * Returns false when none was queued. */
bool policy_authcheck_run_one(struct policy_authcheck *ac);
#endif

#endif
