/* SPDX-License-Identifier: MIT */
/*
 * The libFuzzer harness tests/fuzz/fuzz_container.c, replayed without
 * libFuzzer: every file named in FUZZ_REPLAY (one path per line) goes
 * through the harness whole, and again with one bit flipped at each of a
 * spread of offsets; then its header alone in the harness's header mode,
 * whole and with bits flipped in the same way.  This keeps the harness's invariants (an accepted
 * file's tiles build and decode; a refusal names its rule and leaves no
 * handle) in the ordinary test suite, built with gcc under ASan and UBSan,
 * so a format change that breaks them fails here and not only in the fuzz
 * run of CI.
 */
#include <stdio.h>

#include "../fuzz/fuzz_container.c"

/* The file's header alone, in the harness's header mode with the file's
 * required features (so a 1.2 file's groups are read), and with one bit
 * flipped in each of the first 256 header bytes and a spread of the rest
 * (as for the whole file): the flips reach the header rules past the
 * header checksum, which the harness writes. */
static void replay_header(const uint8_t *const file, const size_t len)
{
    uint64_t header_length = 0;
    uint8_t *data;
    size_t i, step;
    unsigned b;

    if (len < 64)
        return;
    for (b = 0; b < 8; b++)
        header_length |= (uint64_t)file[32 + b] << (8 * b);
    if (header_length > len - 64)
        return;
    data = malloc((size_t)header_length + 1);
    if (data == NULL)
        return;
    data[0] = (uint8_t)(1u | (file[16] & LRQ_REQUIRED_KNOWN) << 1);
    memcpy(data + 1, file + 64, (size_t)header_length);
    LLVMFuzzerTestOneInput(data, (size_t)header_length + 1);
    step = header_length > 256 ? (size_t)(header_length - 256) / 64 + 1 : 1;
    for (i = 0; i < header_length; i += i < 256 ? 1 : step) {
        data[1 + i] ^= (uint8_t)(1u << (i % 8));
        LLVMFuzzerTestOneInput(data, (size_t)header_length + 1);
        data[1 + i] ^= (uint8_t)(1u << (i % 8));
    }
    free(data);
}

static int replay(const char *path)
{
    FILE *in = fopen(path, "rb");
    uint8_t *data;
    long len;
    size_t i, step;

    if (in == NULL || fseek(in, 0, SEEK_END) != 0 || (len = ftell(in)) < 0 || fseek(in, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    data = malloc((size_t)len + 1);
    if (data == NULL || fread(data + 1, 1, (size_t)len, in) != (size_t)len) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    fclose(in);
    data[0] = 0; /* whole-file mode */
    LLVMFuzzerTestOneInput(data, (size_t)len + 1);
    /* Flips over the preamble and header (every byte of the first 256) and a
     * spread of section bytes after them. */
    step = (size_t)len > 256 ? ((size_t)len - 256) / 64 + 1 : 1;
    for (i = 0; i < (size_t)len; i += i < 256 ? 1 : step) {
        data[1 + i] ^= (uint8_t)(1u << (i % 8));
        LLVMFuzzerTestOneInput(data, (size_t)len + 1);
        data[1 + i] ^= (uint8_t)(1u << (i % 8));
    }
    replay_header(data + 1, (size_t)len);
    free(data);
    return 0;
}

int main(void)
{
    const char *list = getenv("FUZZ_REPLAY");
    char path[4096];
    size_t n = 0, files = 0;
    const char *p;

    if (list == NULL)
        return 2;
    for (p = list;; p++) {
        if (*p == '\n' || *p == '\0') {
            path[n] = '\0';
            if (n > 0) {
                if (replay(path) != 0)
                    return 1;
                files++;
            }
            n = 0;
            if (*p == '\0')
                break;
        } else if (n + 1 < sizeof path) {
            path[n++] = *p;
        }
    }
    printf("replayed %zu files\n", files);
    return files > 0 ? 0 : 1;
}
