#include "gan/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int gan_fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int gan_write_file_atomic(const char *path, const void *data, size_t len, gan_error *err)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return gan_fail(err, "path", "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return gan_fail(err, "path", "cannot create %s: %s", tmp, strerror(errno));
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return gan_fail(err, "path", "cannot write %s: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return gan_fail(err, "path", "cannot fsync %s: %s", tmp, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return gan_fail(err, "path", "cannot close %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return gan_fail(err, "path", "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    gan_fsync_parent(path);
    return 0;
}

int gan_read_file(const char *path, uint8_t **data, size_t *len, size_t max_len, gan_error *err)
{
    /* O_NONBLOCK: a FIFO put in a file's place must not block the open (regular files ignore it) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return gan_fail(err, "path", "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return gan_fail(err, "path", "%s is not a regular file", path);
    }
    if ((size_t)st.st_size > max_len) {
        close(fd);
        return gan_fail(err, "path", "%s is %lld bytes, more than the limit of %zu", path,
                        (long long)st.st_size, max_len);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return gan_fail(err, "path", "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return gan_fail(err, "path", "cannot read %s: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return 0;
}

/*
 * Where a torn last line of the file open at fd (size bytes) begins: the
 * offset after its last '\n', or 0; size itself when the file ends whole.
 */
static int whole_lines_end(int fd, off_t size, off_t *end)
{
    char buf[4096];
    off_t pos = size;
    while (pos > 0) {
        size_t n = pos < (off_t)sizeof buf ? (size_t)pos : sizeof buf;
        ssize_t got = pread(fd, buf, n, pos - (off_t)n);
        if (got != (ssize_t)n) {
            if (got >= 0)
                errno = EIO;
            return -1;
        }
        for (size_t i = n; i > 0; i--)
            if (buf[i - 1] == '\n') {
                *end = pos - (off_t)n + (off_t)i;
                return 0;
            }
        pos -= (off_t)n;
    }
    *end = 0;
    return 0;
}

/* Open a regular file to append to (created 0644), read-write so that its tail can be read; -1
 * with errno (EINVAL: not a regular file). */
static int open_append(const char *path, off_t *size)
{
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    *size = st.st_size;
    return fd;
}

int gan_torn_tail(const char *path, long long *dropped)
{
    *dropped = 0;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    off_t end = 0;
    int rc = -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto out;
    }
    if (whole_lines_end(fd, st.st_size, &end) != 0)
        goto out;
    if (end < st.st_size) {
        if (ftruncate(fd, end) != 0 || fsync(fd) != 0)
            goto out;
        *dropped = (long long)(st.st_size - end);
    }
    rc = 0;
out:;
    int e = errno;
    close(fd);
    if (rc)
        errno = e;
    return rc;
}

int gan_append_line(const char *path, const char *line)
{
    off_t size, end;
    int fd = open_append(path, &size);
    if (fd < 0)
        return -1;
    size_t n = strlen(line);
    char *buf = malloc(n + 1);
    int rc = -1, e = ENOMEM;
    if (!buf)
        goto out;
    memcpy(buf, line, n);
    buf[n++] = '\n';
    /* a line an earlier failure left torn is cut first, so this one is not glued to it */
    if (whole_lines_end(fd, size, &end) != 0 || (end < size && ftruncate(fd, end) != 0)) {
        e = errno;
        goto out;
    }
    size = end;
    size_t done = 0;
    errno = 0;
    while (done < n) {
        ssize_t w = write(fd, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    if (done == n && fsync(fd) == 0) {
        rc = 0;
    } else {
        e = errno ? errno : ENOSPC;   /* write returned 0 */
        if (ftruncate(fd, size) == 0) /* the file as it was: no part of this line stays */
            fsync(fd);
    }
out:
    free(buf);
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc)
        errno = e;
    return rc;
}
