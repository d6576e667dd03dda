/* The C API test: asynchronous I/O, copying and on DMA buffers. */
#include "capi_test.h"

/* Waits for `n` completions of `ctx`; each must be `want` bytes. */
static void complete(bfs_ctx_t ctx, int n, long long want) {
  struct bfs_completion c[8];
  for (int seen = 0; seen < n;) {
    ssize_t got = bfs_poll(ctx, c, 8, 1);
    EQ(got > 0, 1);
    if (got <= 0) return;
    for (ssize_t k = 0; k < got; k++) EQ(c[k].result, want);
    seen += (int)got;
  }
}

/* Asynchronous I/O: the copying calls, then DMA buffers with no copy at all. */
void async_io(struct env *e) {
  up(e);
  enum { LEN = 64 << 10, N = 4 };
  bfs_file_t f, ro;
  struct bfs_stats s0, s1;
  struct bfs_completion c[N];
  static unsigned char mem[N][LEN], back[LEN];
  OK(bfs_open(e->ctx, "/aio", O_RDWR | O_CREAT | O_DIRECT, 0644, &f));

  /* The copying calls: every byte is copied once, at submit or at poll. */
  OK(bfs_stats(e->fs, &s0));
  for (int i = 0; i < N; i++) {
    fill(mem[i], LEN, 10 + i);
    OK(bfs_submit_pwrite(e->ctx, f, mem[i], LEN, (uint64_t)i * LEN, i));
  }
  complete(e->ctx, N, LEN);
  memset(mem, 0, sizeof mem);
  for (int i = 0; i < N; i++) OK(bfs_submit_pread(e->ctx, f, mem[i], LEN, (uint64_t)i * LEN, i));
  complete(e->ctx, N, LEN);
  fill(back, LEN, 12);
  TRUE(memcmp(mem[2], back, LEN) == 0);
  OK(bfs_stats(e->fs, &s1));
  EQ(s1.copied_bytes - s0.copied_bytes, 2 * N * LEN);
  EQ(bfs_poll(e->ctx, c, N, 0), 0);

  /* DMA buffers: the device reads and writes them; nothing is copied. */
  void *dma[N], *in;
  for (int i = 0; i < N; i++) {
    OK(bfs_dma_alloc(e->fs, LEN, &dma[i]));
    TRUE(((uintptr_t)dma[i] & 4095) == 0);
    fill(dma[i], LEN, 50 + i);
  }
  OK(bfs_dma_alloc(e->fs, 2 * LEN, &in));
  OK(bfs_stats(e->fs, &s0));
  for (int i = 0; i < N; i++)
    OK(bfs_submit_pwrite_dma(e->ctx, f, dma[i], LEN, (uint64_t)(N + i) * LEN, 100 + i));
  /* Lent buffers: neither submitted again nor freed until their completion is polled. */
  EQ(bfs_submit_pwrite_dma(e->ctx, f, dma[0], LEN, 0, 0), -EBUSY);
  EQ(bfs_submit_pread_dma(e->ctx, f, dma[1], LEN, 0, 0), -EBUSY);
  EQ(bfs_dma_free(dma[0]), -EBUSY);
  complete(e->ctx, N, LEN);
  OK(bfs_fsync(e->ctx, f));
  /* A read of part of a larger buffer: only `len` bytes are read into it. */
  memset(in, 0xee, 2 * LEN);
  OK(bfs_submit_pread_dma(e->ctx, f, in, LEN, (uint64_t)(N + 3) * LEN, 7));
  EQ(bfs_poll(e->ctx, c, N, 1), 1);
  EQ(c[0].user_data, 7);
  EQ(c[0].result, LEN);
  TRUE(memcmp(in, dma[3], LEN) == 0 && ((unsigned char *)in)[LEN] == 0xee);
  OK(bfs_stats(e->fs, &s1));
  EQ(s1.copied_bytes - s0.copied_bytes, 0);
  EQ(s1.bounce_bytes - s0.bounce_bytes, 0);
  TRUE(s1.direct_ios - s0.direct_ios >= N + 1);
  /* The synchronous O_DIRECT path from ordinary memory bounces. */
  EQ(bfs_pread(e->ctx, f, back, LEN, 0), LEN);
  OK(bfs_stats(e->fs, &s0));
  EQ(s0.bounce_bytes - s1.bounce_bytes, LEN);

  /* A failed request gives its buffer back too: a misaligned direct read, a write through
   * a read-only handle. */
  OK(bfs_submit_pread_dma(e->ctx, f, dma[0], 100, 1, 1));
  EQ(bfs_poll(e->ctx, c, N, 1), 1);
  EQ(c[0].result, -EINVAL);
  OK(bfs_open(e->ctx, "/aio", O_RDONLY | O_DIRECT, 0, &ro));
  OK(bfs_submit_pwrite_dma(e->ctx, ro, dma[0], LEN, 0, 2));
  EQ(bfs_poll(e->ctx, c, N, 1), 1);
  EQ(c[0].result, -EBADF);
  OK(bfs_submit_pwrite(e->ctx, ro, mem[0], LEN, 0, 3));
  EQ(bfs_poll(e->ctx, c, N, 1), 1);
  EQ(c[0].result, -EBADF);
  OK(bfs_close(ro));

  /* Completions left unpolled when the context goes: the buffers are the caller's again. */
  OK(bfs_submit_pread_dma(e->ctx, f, dma[1], LEN, 0, 1));
  OK(bfs_ctx_destroy(e->ctx));
  OK(bfs_ctx_create(e->fs, &e->ctx));
  OK(bfs_dma_free(dma[1]));
  OK(bfs_dma_alloc(e->fs, LEN, &dma[1]));

  /* Bad buffers, lengths, handles; none of them takes the buffer. */
  EQ(bfs_submit_pread_dma(e->ctx, f, mem[0], LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pread_dma(e->ctx, f, (char *)dma[0] + 4096, 4096, 0, 0), -EINVAL);
  EQ(bfs_submit_pread_dma(e->ctx, f, NULL, LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pread_dma(e->ctx, f, dma[0], LEN + 1, 0, 0), -EINVAL);
  EQ(bfs_submit_pwrite_dma(e->ctx, f, dma[0], 0, 0, 0), -EINVAL);
  EQ(bfs_submit_pwrite_dma(e->ctx, f, mem[0], LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pread(e->ctx, f, NULL, LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pread(e->ctx, f, mem[0], 0, 0, 0), -EINVAL);
  EQ(bfs_submit_pwrite(e->ctx, f, NULL, LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pwrite(e->ctx, f, mem[0], 0, 0, 0), -EINVAL);
  EQ(bfs_poll(e->ctx, NULL, 4, 0), -EINVAL);
  EQ(bfs_poll(e->ctx, c, 0, 0), -EINVAL);
  EQ(bfs_dma_alloc(e->fs, 0, &in), -EINVAL);
  EQ(bfs_dma_alloc(e->fs, (size_t)1 << 52, &in), -ENOMEM);
  EQ(bfs_dma_alloc(e->fs, LEN, NULL), -EINVAL);
  EQ(bfs_dma_free(mem[0]), -EINVAL);
  EQ(bfs_dma_free(NULL), -EINVAL);
  EQ(bfs_stats(e->fs, NULL), -EINVAL);
  for (int i = 0; i < N_BAD; i++) {
    uint64_t bf = bad_handle(e, i, f), bc = bad_handle(e, i, e->ctx);
    uint64_t bs = bad_handle(e, i, e->fs);
    EQ(bfs_submit_pread_dma(bc, f, dma[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pread_dma(e->ctx, bf, dma[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pwrite_dma(bc, f, dma[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pwrite_dma(e->ctx, bf, dma[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pread(bc, f, mem[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pread(e->ctx, bf, mem[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pwrite(bc, f, mem[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pwrite(e->ctx, bf, mem[0], LEN, 0, 0), -EBADF);
    EQ(bfs_poll(bc, c, N, 0), -EBADF);
    EQ(bfs_dma_alloc(bs, LEN, &in), -EBADF);
    EQ(bfs_stats(bs, &s0), -EBADF);
  }
  /* Still the caller's after all of that: free them. */
  for (int i = 0; i < N; i++) OK(bfs_dma_free(dma[i]));
  OK(bfs_dma_free(in));
  EQ(bfs_dma_free(dma[0]), -EINVAL);
  OK(bfs_close(f));
  down(e);
}
