/* hsm_server.h: cofferd's remote-HSM service (issue 4, docs/remote.md): the token engine
 * (src/hsm) served over the wire protocol of src/rpc (docs/protocol.md) on a Unix socket.
 *
 * One thread per connection; the requests of a connection run in order. Every session a
 * connection opens is closed when the connection ends. The engine must be initialized
 * (hsm_initialize) before a connection is served. Independent of the TPM parts of cofferd. */
#pragma once
#include <stddef.h>
#include "base/config.h"
#include "base/error.h"

typedef struct cofferd_hsm cofferd_hsm;

/* Binds l (a Unix socket: a stale socket file at the path is replaced), chmods it to mode and
 * starts the accept thread. err gets one sentence on failure. */
cf_err cofferd_hsm_start(const cf_listen *l, unsigned mode, cofferd_hsm **out, char *err, size_t errlen);
/* Starts the service of cfg's [hsm] section: a Unix socket as above, or tls:HOST:PORT (TLS 1.3,
 * a client certificate signed by [hsm] client_ca required; the handshake runs on the connection's
 * thread, 10 s at most). */
cf_err cofferd_hsm_start_config(const cf_config *cfg, cofferd_hsm **out, char *err, size_t errlen);
/* Closes the listener, ends every connection (their sessions are closed), joins the threads,
 * removes the socket file and frees. NULL is a no-op. */
void cofferd_hsm_stop(cofferd_hsm *h);
/* Serves one connection until the peer closes, a protocol error, or shutdown(fd). Closes the
 * connection's sessions at the end; does not close fd. */
void cofferd_hsm_serve(int fd);
