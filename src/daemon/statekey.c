/* statekey.c: the daemon master key and the sealing of TPM state blobs (see daemon.h).
 *
 * The key file is created with O_CREAT|O_EXCL at mode 0600, so two daemons starting at once
 * cannot both write one, and a key file anyone else can read is refused rather than used: a
 * state blob is only as secret as this key. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/secmem.h"
#include "crypto/crypto.h"
#include "daemon/daemon.h"

static cf_err read_key(int fd, const char *path, uint8_t *key, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CF_E_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: the master key is not a regular file", path);
        return CF_E_CONFIG;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "%s: the master key has group/other permissions (mode %04o); "
                 "it must be readable by its owner only (chmod 600)", path, (unsigned)(st.st_mode & 07777));
        return CF_E_CONFIG;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "%s: the master key belongs to uid %u, not to this user (uid %u)",
                 path, (unsigned)st.st_uid, (unsigned)geteuid());
        return CF_E_CONFIG;
    }
    if (st.st_size != CF_MASTER_KEY_LEN) {
        snprintf(err, errlen, "%s: the master key must be %d bytes, this file has %lld", path,
                 CF_MASTER_KEY_LEN, (long long)st.st_size);
        return CF_E_CONFIG;
    }
    size_t got = 0;
    while (got < CF_MASTER_KEY_LEN) {
        ssize_t n = read(fd, key + got, CF_MASTER_KEY_LEN - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            cf_wipe(key, CF_MASTER_KEY_LEN);
            snprintf(err, errlen, "%s: cannot read the master key: %s", path, n < 0 ? strerror(errno) : "short file");
            return CF_E_IO;
        }
        got += (size_t)n;
    }
    return CF_OK;
}

static cf_err create_key(const char *dir, const char *path, uint8_t *key, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? CF_E_NOT_FOUND /* lost a race: load it */ : CF_E_IO;
    cf_err rv = cf_random(key, CF_MASTER_KEY_LEN);
    size_t put = 0;
    while (rv == CF_OK && put < CF_MASTER_KEY_LEN) {
        ssize_t n = write(fd, key + put, CF_MASTER_KEY_LEN - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rv = CF_E_IO;
        else
            put += (size_t)n;
    }
    if (rv == CF_OK && fsync(fd) != 0)
        rv = CF_E_IO;
    if (close(fd) != 0 && rv == CF_OK)
        rv = CF_E_IO;
    if (rv != CF_OK) {
        snprintf(err, errlen, "%s: cannot write a new master key: %s", path,
                 rv == CF_E_IO ? strerror(errno) : cf_err_message(rv));
        cf_wipe(key, CF_MASTER_KEY_LEN);
        unlink(path);
        return rv;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* make the new name durable */
        (void)fsync(dfd);
        close(dfd);
    }
    return CF_OK;
}

cf_err cf_master_key_load(const char *dir, bool may_create, uint8_t *key, bool *created, char *err, size_t errlen)
{
    char path[CF_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/master.key", dir);
    *created = false;
    if (errlen)
        err[0] = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            cf_err rv = read_key(fd, path, key, err, errlen);
            close(fd);
            return rv;
        }
        if (errno != ENOENT) {
            snprintf(err, errlen, "%s: cannot open the master key: %s", path, strerror(errno));
            return CF_E_IO;
        }
        if (!may_create) {
            snprintf(err, errlen, "%s is missing, but the store holds TPM state sealed under it; "
                     "restore that file (a new key could not open the state)", path);
            return CF_E_NOT_FOUND;
        }
        cf_err rv = create_key(dir, path, key, err, errlen);
        if (rv == CF_OK) {
            *created = true;
            return CF_OK;
        }
        if (rv != CF_E_NOT_FOUND) {
            if (rv == CF_E_IO && !err[0])
                snprintf(err, errlen, "%s: cannot create the master key: %s", path, strerror(errno));
            return rv;
        }
    }
    snprintf(err, errlen, "%s: the master key appeared and vanished while starting", path);
    return CF_E_IO;
}

/* AAD = "coffer tpm state v1" || name: a blob sealed for one instance does not open as another's. */
static size_t make_aad(const char *name, uint8_t *aad, size_t cap)
{
    size_t a = sizeof CF_STATE_AAD - 1, n = strlen(name);
    if (a + n > cap)
        return 0;
    memcpy(aad, CF_STATE_AAD, a);
    memcpy(aad + a, name, n);
    return a + n;
}

cf_err cf_state_seal(const uint8_t *key, const char *name, const uint8_t *blob, size_t len,
                     uint8_t **sealed, size_t *sealed_len)
{
    uint8_t aad[sizeof CF_STATE_AAD + CF_TPM_NAME_MAX];
    size_t aadlen = make_aad(name, aad, sizeof aad);
    CF_ENSURE(aadlen && (blob || !len), CF_E_ARGS);
    CF_ENSURE(len <= SIZE_MAX - CF_GCM_IV_LEN - CF_GCM_TAG_LEN, CF_E_OVERFLOW);
    size_t total = CF_GCM_IV_LEN + len + CF_GCM_TAG_LEN;
    uint8_t *out = malloc(total);
    CF_ENSURE(out, CF_E_NOMEM);
    cf_err rv = cf_random(out, CF_GCM_IV_LEN);
    if (rv == CF_OK)
        rv = cf_aes_gcm_seal(key, CF_MASTER_KEY_LEN, out, CF_GCM_IV_LEN, aad, aadlen, blob, len,
                             out + CF_GCM_IV_LEN, out + CF_GCM_IV_LEN + len, CF_GCM_TAG_LEN);
    if (rv != CF_OK) {
        free(out);
        return rv;
    }
    *sealed = out;
    *sealed_len = total;
    return CF_OK;
}

cf_err cf_state_open(const uint8_t *key, const char *name, const uint8_t *sealed, size_t sealed_len,
                     uint8_t **blob, size_t *len)
{
    uint8_t aad[sizeof CF_STATE_AAD + CF_TPM_NAME_MAX];
    size_t aadlen = make_aad(name, aad, sizeof aad);
    CF_ENSURE(aadlen && sealed, CF_E_ARGS);
    if (sealed_len < CF_GCM_IV_LEN + CF_GCM_TAG_LEN)
        return CF_E_STORE_CORRUPT;
    size_t n = sealed_len - CF_GCM_IV_LEN - CF_GCM_TAG_LEN;
    uint8_t *pt = malloc(n ? n : 1);
    CF_ENSURE(pt, CF_E_NOMEM);
    cf_err rv = cf_aes_gcm_open(key, CF_MASTER_KEY_LEN, sealed, CF_GCM_IV_LEN, aad, aadlen,
                                sealed + CF_GCM_IV_LEN, n, sealed + CF_GCM_IV_LEN + n, CF_GCM_TAG_LEN, pt);
    if (rv != CF_OK) {
        cf_free_wiped(pt, n);
        return rv == CF_E_ENCRYPTED_DATA_INVALID ? CF_E_STORE_CORRUPT : rv;
    }
    *blob = pt;
    *len = n;
    return CF_OK;
}
