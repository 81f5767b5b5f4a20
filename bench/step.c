/* bench/step — the reference SimCLR training step, timed.
 *
 *   build/bench/step --threads 2 --batch 256 --steps 12 [--profile | --profile-cpu]
 *                    [--config configs/bench_step.cfg] [--images file.gz]
 *                    [--frames T [--size S]] [--precision fp32|bf16]
 *
 * Builds the reference encoder of configs/bench_step.cfg (ResNet, small
 * stem, blocks [1,1,1], widths [32,64,128]) plus the projection head
 * Linear 128->128, ReLU, Linear 128->64, and runs forward + backward + an SGD
 * momentum step with NT-Xent (T = 0.5) over 2 x B views of Fashion-MNIST
 * images (the first 2B training images; the pixels are fixed so only the
 * step is timed, as in bench/peer_pytorch.py). Prints one JSON line:
 * views_per_s (median over the steps after 2 warm-up steps), gflops,
 * peak_rss_mb, threads, batch. --profile adds, on stderr, the forward /
 * backward / optimizer split and each conv layer's forward and backward
 * time and GFLOP/s measured in isolation on the same shapes.
 *
 * --frames T: the CVRL clip step of configs/cvrl_fmnist.cfg instead: the
 * clip encoder (the same trunk on every frame of S x S frames, S = 32 by
 * default, one temporal block with a (3, 1, 1) kernel, mean over time and
 * space), 2 x B clips of T frames (each image drifting one pixel per frame
 * across its canvas), the same head, loss and optimizer; views_per_s then
 * counts clips. The peer is bench/peer_pytorch.py --frames T.
 *
 * --precision bf16: the engine option precision (train.precision): the
 * im2col / 1x1 convolutions and the head's products in bfloat16 with
 * float32 sums; "precision" in the JSON says what ran (fp32 where the
 * processor lacks AVX512-BF16, with a line on stderr).
 *
 * OpenBLAS 0.3.21 does not know recent CPUs (Sapphire Rapids) and falls
 * back to its generic "Prescott" kernels, 6x slower than its AVX-512 ones.
 * The core type can only be chosen before the library loads, so when it
 * picked a generic core on a CPU with AVX2/AVX-512 this program re-executes
 * itself with OPENBLAS_CORETYPE set (--no-blas-fix to keep the default). */
#include <cblas.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "contrast/contrast.h"
#include "contrast/models.h"

#define DEFAULT_IMAGES "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The first `count` images of an IDX3 gzip file as floats in [0,1].
 * Returns 0 on success. */
static int load_idx_images(const char *path, float *dst, int64_t count) {
    gzFile f = gzopen(path, "rb");
    if (!f) return -1;
    unsigned char hdr[16];
    int ok = gzread(f, hdr, 16) == 16 && hdr[2] == 0x08 && hdr[3] == 3;
    int64_t n = ok ? ((int64_t)hdr[4] << 24 | hdr[5] << 16 | hdr[6] << 8 | hdr[7]) : 0;
    int64_t rows = ok ? (hdr[8] << 24 | hdr[9] << 16 | hdr[10] << 8 | hdr[11]) : 0;
    int64_t cols = ok ? (hdr[12] << 24 | hdr[13] << 16 | hdr[14] << 8 | hdr[15]) : 0;
    if (!ok || rows != 28 || cols != 28 || n < 1) {
        gzclose(f);
        return -1;
    }
    unsigned char buf[784];
    for (int64_t i = 0; i < count; i++) {
        if (i >= n) { /* fewer images than asked: repeat them cyclically */
            memcpy(dst + i * 784, dst + (i % n) * 784, 784 * sizeof(float));
            continue;
        }
        if (gzread(f, buf, 784) != 784) {
            gzclose(f);
            return -1;
        }
        for (int j = 0; j < 784; j++) dst[i * 784 + j] = buf[j] / 255.0f;
    }
    gzclose(f);
    return 0;
}

/* Clips (n, t, 1, size, size) from n 28x28 images: frame k holds the
 * image at offset (k, k) mod the free border, on a zero canvas. */
static float *make_clips(const float *images, int64_t n, int t, int size) {
    float *clips = calloc((size_t)(n * t * size * size), sizeof *clips);
    int room = size - 28 + 1;
    for (int64_t i = 0; clips && i < n; i++)
        for (int k = 0; k < t; k++) {
            float *f = clips + ((size_t)i * (size_t)t + (size_t)k) * (size_t)(size * size);
            int o = k % room;
            for (int y = 0; y < 28; y++) memcpy(f + (y + o) * size + o, images + i * 784 + y * 28, 28 * sizeof *f);
        }
    return clips;
}

/* Encoder settings from the `encoder` group of a config file; defaults are
 * the reference model. Returns 0 on success. */
static int read_config(const char *path, ct_resnet_config *rc) {
    memset(rc, 0, sizeof *rc);
    rc->block = CT_RESNET_BASIC;
    rc->n_stages = 3;
    for (int i = 0; i < 3; i++) rc->blocks[i] = 1, rc->widths[i] = 32 << i;
    rc->in_channels = 1, rc->stem_width = 32, rc->imagenet_stem = false;
    if (!path) return 0;
    config_t cfg;
    config_init(&cfg);
    if (!config_read_file(&cfg, path)) {
        fprintf(stderr, "step: %s:%d: %s\n", path, config_error_line(&cfg), config_error_text(&cfg));
        config_destroy(&cfg);
        return -1;
    }
    config_setting_t *e = config_lookup(&cfg, "encoder");
    int rcode = 0;
    if (e) {
        const char *s;
        int v;
        if (config_setting_lookup_string(e, "block", &s)) rc->block = strcmp(s, "bottleneck") == 0;
        if (config_setting_lookup_string(e, "stem", &s)) rc->imagenet_stem = strcmp(s, "imagenet") == 0;
        if (config_setting_lookup_int(e, "in_channels", &v)) rc->in_channels = v;
        if (config_setting_lookup_int(e, "stem_width", &v)) rc->stem_width = v;
        config_setting_t *b = config_setting_lookup(e, "blocks"), *w = config_setting_lookup(e, "widths");
        if (b && w) {
            int n = config_setting_length(b);
            if (n != config_setting_length(w) || n < 1 || n > CT_RESNET_MAX_STAGES) {
                fprintf(stderr, "step: %s: blocks and widths must have the same length (1..%d)\n", path,
                        CT_RESNET_MAX_STAGES);
                rcode = -1;
            } else {
                rc->n_stages = n;
                for (int i = 0; i < n; i++)
                    rc->blocks[i] = config_setting_get_int_elem(b, i),
                    rc->widths[i] = config_setting_get_int_elem(w, i);
            }
        }
    }
    config_destroy(&cfg);
    return rcode;
}

/* Forward multiply-adds per image of one conv. */
typedef struct conv_layer {
    char name[48];
    int64_t cin, cout, k, stride, h; /* square input h x h */
} conv_layer;

static int list_convs(const ct_resnet_config *rc, int64_t h, conv_layer *out, int max) {
    int n = 0;
    int64_t c = rc->stem_width;
    int64_t exp = rc->block == CT_RESNET_BOTTLENECK ? 4 : 1;
    int k0 = rc->imagenet_stem ? 7 : 3, s0 = rc->imagenet_stem ? 2 : 1;
    if (n < max) out[n++] = (conv_layer){"conv1", rc->in_channels, c, k0, s0, h};
    h = (h + 2 * (k0 / 2) - k0) / s0 + 1;
    if (rc->imagenet_stem) h = (h + 2 - 3) / 2 + 1;
    for (int s = 0; s < rc->n_stages; s++)
        for (int i = 0; i < rc->blocks[s]; i++) {
            int64_t stride = (s > 0 && i == 0) ? 2 : 1, p = rc->widths[s], oc = p * exp;
            int64_t ho = (h + 2 - 3) / stride + 1;
            char pre[32];
            snprintf(pre, sizeof pre, "layer%d.%d", s + 1, i);
            if (rc->block == CT_RESNET_BASIC) {
                if (n < max) out[n] = (conv_layer){"", c, p, 3, stride, h}, snprintf(out[n++].name, 48, "%s.conv1", pre);
                if (n < max) out[n] = (conv_layer){"", p, p, 3, 1, ho}, snprintf(out[n++].name, 48, "%s.conv2", pre);
            } else {
                if (n < max) out[n] = (conv_layer){"", c, p, 1, 1, h}, snprintf(out[n++].name, 48, "%s.conv1", pre);
                if (n < max) out[n] = (conv_layer){"", p, p, 3, stride, h}, snprintf(out[n++].name, 48, "%s.conv2", pre);
                if (n < max) out[n] = (conv_layer){"", p, oc, 1, 1, ho}, snprintf(out[n++].name, 48, "%s.conv3", pre);
            }
            if (stride != 1 || c != oc)
                if (n < max) out[n] = (conv_layer){"", c, oc, 1, stride, h}, snprintf(out[n++].name, 48, "%s.downsample.0", pre);
            c = oc, h = ho;
        }
    return n;
}

static double conv_macs(const conv_layer *l) {
    int64_t pad = l->k / 2, ho = (l->h + 2 * pad - l->k) / l->stride + 1;
    return (double)ho * ho * l->cout * l->cin * l->k * l->k;
}

/* Time one conv layer's forward and backward in isolation: the best of
 * CT__PROFILE_REPS runs, the figure least disturbed by other programs on a
 * shared machine. */
#define CT__PROFILE_REPS 7
static double (*profile_clock)(void) = now_s; /* cpu_s with --profile-cpu */

/* The engine options every graph of this program gets: its pool and the
 * CT_CONV_ALGO / CT_WINO_* overrides, read once in main. */
static ct_engine_opts bench_engine;

static void profile_conv(const conv_layer *l, int64_t n, double *fwd, double *bwd) {
    ct_graph *g = ct_graph_new(0);
    if (g) ct_graph_set_engine(g, &bench_engine);
    int64_t xs[4] = {n, l->cin, l->h, l->h}, ws[4] = {l->cout, l->cin, l->k, l->k};
    float *xd = malloc(sizeof(float) * (size_t)ct_shape_numel(4, xs));
    float *wd = malloc(sizeof(float) * (size_t)ct_shape_numel(4, ws));
    float *wg = calloc((size_t)ct_shape_numel(4, ws), sizeof(float));
    for (int64_t i = 0; i < ct_shape_numel(4, xs); i++) xd[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int64_t i = 0; i < ct_shape_numel(4, ws); i++) wd[i] = (float)((i * 104729) % 1000) / 10000.0f;
    double tf[CT__PROFILE_REPS], tb[CT__PROFILE_REPS];
    for (int rep = 0; rep < CT__PROFILE_REPS; rep++) {
        ct_graph_reset(g);
        ct_tensor *x = ct_tensor_wrap(g, xd, 4, xs), *w = ct_tensor_wrap(g, wd, 4, ws);
        w->grad = wg;
        w->flags |= CT_TENSOR_REQUIRES_GRAD;
        if (l->cin > 1) x->flags |= CT_TENSOR_REQUIRES_GRAD; /* the stem needs no data gradient */
        double t0 = profile_clock();
        ct_tensor *y = ct_conv2d(g, x, w, NULL, (int)l->stride, (int)(l->k / 2));
        double t1 = profile_clock();
        ct_tensor *s = ct_sum(g, y);
        double t2 = profile_clock();
        ct_graph_backward(g, s);
        double t3 = profile_clock();
        tf[rep] = t1 - t0, tb[rep] = t3 - t2;
    }
    qsort(tf, CT__PROFILE_REPS, sizeof *tf, cmp_double);
    qsort(tb, CT__PROFILE_REPS, sizeof *tb, cmp_double);
    *fwd = tf[0], *bwd = tb[0];
    free(xd), free(wd), free(wg);
    ct_graph_free(g);
}

int main(int argc, char **argv) {
    int threads = 2, batch = 256, steps = 12, profile = 0, fix = 1, frames = 1, size = 32;
    const char *cfg_path = NULL, *images = DEFAULT_IMAGES;
    ct_precision precision = CT_PRECISION_FP32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--config") && i + 1 < argc) cfg_path = argv[++i];
        else if (!strcmp(argv[i], "--images") && i + 1 < argc) images = argv[++i];
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc) frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else if (!strcmp(argv[i], "--profile-cpu")) profile = 1, profile_clock = cpu_s;
        else if (!strcmp(argv[i], "--no-blas-fix")) fix = 0;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc && !strcmp(argv[i + 1], "fp32")) precision = CT_PRECISION_FP32, i++;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc && !strcmp(argv[i + 1], "bf16")) precision = CT_PRECISION_BF16, i++;
        else {
            fprintf(stderr, "usage: step [--threads N] [--batch B] [--steps S] [--profile|--profile-cpu] [--config F]"
                            " [--images F] [--frames T [--size S]] [--precision fp32|bf16] [--no-blas-fix]\n");
            return 2;
        }
    }
    if (threads < 1 || batch < 2 || steps < 1 || frames < 1 || size < 28) {
        fprintf(stderr, "step: need threads >= 1, batch >= 2, steps >= 1, frames >= 1, size >= 28\n");
        return 2;
    }
    if (frames > 1 && profile) {
        fprintf(stderr, "step: --profile lists the image encoder's convolutions; not with --frames\n");
        return 2;
    }
    if (fix) ct_blas_reexec_if_generic(argv);
    ct_resnet_config rc;
    if (read_config(cfg_path, &rc) != 0) return 1;

    /* Threads: our pool splits images; OpenBLAS runs one thread per caller. */
    ct_error err = CT_ERROR_INIT;
    ct_threadpool *pool = NULL;
    if (threads > 1 && !(pool = ct_threadpool_new(threads, &err))) {
        fprintf(stderr, "step: %s\n", err.msg);
        return 1;
    }
    ct_engine_opts_init(&bench_engine);
    if (ct_engine_opts_from_env(&bench_engine, &err) != CT_OK) {
        fprintf(stderr, "step: %s\n", err.msg);
        return 1;
    }
    bench_engine.pool = pool;
    bench_engine.precision = precision;
    openblas_set_num_threads(1);

    ct_params *store = ct_params_new(0);
    ct_resnet *enc = NULL;
    ct_clip_resnet *clip_enc = NULL;
    ct_clip_resnet_config cc = {rc, 1, 3, 1}; /* configs/cvrl_fmnist.cfg's temporal block */
    ct_status est = frames > 1 ? ct_clip_resnet_new(&cc, store, "encoder.", &clip_enc, &err)
                               : ct_resnet_new(&rc, store, "encoder.", &enc, &err);
    if (est != CT_OK) {
        fprintf(stderr, "step: %s\n", err.msg);
        return 1;
    }
    int64_t d = frames > 1 ? ct_clip_resnet_out_dim(clip_enc) : ct_resnet_out_dim(enc);
    int64_t w1s[2] = {d, d}, b1s[1] = {d}, w2s[2] = {64, d}, b2s[1] = {64};
    ct_tensor *w1 = ct_params_add(store, "head.0.weight", CT_PARAM_TRAINABLE, 2, w1s, CT_INIT_LINEAR_DEFAULT, 0, 0, &err);
    ct_tensor *b1 = ct_params_add(store, "head.0.bias", CT_PARAM_TRAINABLE, 1, b1s, CT_INIT_FAN_IN_UNIFORM, (float)d, 0, &err);
    ct_tensor *w2 = ct_params_add(store, "head.2.weight", CT_PARAM_TRAINABLE, 2, w2s, CT_INIT_LINEAR_DEFAULT, 0, 0, &err);
    ct_tensor *b2 = ct_params_add(store, "head.2.bias", CT_PARAM_TRAINABLE, 1, b2s, CT_INIT_FAN_IN_UNIFORM, (float)d, 0, &err);
    if (!w1 || !b1 || !w2 || !b2 || ct_params_finalize(store, &err) != CT_OK) {
        fprintf(stderr, "step: %s\n", err.msg);
        return 1;
    }
    ct_optim_config oc = ct_optim_defaults(CT_OPTIM_SGD);
    oc.lr = 0.1f, oc.momentum = 0.9f;
    ct_optim *opt = ct_optim_new(store, &oc, &err);
    if (!opt) {
        fprintf(stderr, "step: %s\n", err.msg);
        return 1;
    }

    const int64_t views = 2 * (int64_t)batch, hw = 28;
    float *pixels = malloc(sizeof(float) * (size_t)(views * hw * hw * rc.in_channels));
    int32_t *group = malloc(sizeof(int32_t) * (size_t)views);
    int real = rc.in_channels == 1 && load_idx_images(images, pixels, views) == 0;
    if (!real) {
        fprintf(stderr, "step: %s not readable: using random pixels\n", images);
        ct_rng r;
        ct_rng_init(&r, 0, 1);
        for (int64_t i = 0; i < views * hw * hw * rc.in_channels; i++) pixels[i] = ct_rng_uniform(&r);
    }
    for (int64_t i = 0; i < views; i++) group[i] = (int32_t)(i % batch); /* view i and i+B pair up */
    float *clips = frames > 1 ? make_clips(pixels, views, frames, size) : NULL;
    if (frames > 1 && !clips) {
        fprintf(stderr, "step: out of memory for %lld clips\n", (long long)views);
        return 1;
    }

    ct_graph *g = ct_graph_new(0);
    if (g) ct_graph_set_engine(g, &bench_engine);
    const int warm = 2;
    double *times = malloc(sizeof(double) * (size_t)(steps + warm));
    double *cpu = malloc(sizeof(double) * (size_t)(steps + warm));
    double t_fwd = 0, t_bwd = 0, t_opt = 0;
    float loss_v = 0;
    for (int s = 0; s < steps + warm; s++) {
        double t0 = now_s(), c0 = cpu_s();
        ct_params_zero_grad(store);
        int64_t xs[4] = {views, rc.in_channels, hw, hw}, cs[5] = {views, frames, 1, size, size};
        ct_tensor *h = frames > 1 ? ct_clip_resnet_forward(clip_enc, g, ct_tensor_wrap(g, clips, 5, cs))
                                  : ct_resnet_forward(enc, g, ct_tensor_wrap(g, pixels, 4, xs));
        h = ct_relu(g, ct_linear(g, h, w1, b1));
        ct_tensor *z = ct_l2_normalize(g, ct_linear(g, h, w2, b2), 1e-12f);
        ct_tensor *loss = ct_nt_xent(g, z, group, 0.5f);
        double t1 = now_s();
        if (ct_graph_status(g) != CT_OK || ct_graph_backward(g, loss) != CT_OK) {
            fprintf(stderr, "step: %s\n", ct_graph_error(g));
            return 1;
        }
        double t2 = now_s();
        loss_v = loss->data[0];
        ct_optim_step(opt, oc.lr);
        ct_graph_reset(g);
        double t3 = now_s();
        times[s] = t3 - t0;
        cpu[s] = cpu_s() - c0;
        if (s >= warm) t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2;
    }
    qsort(times + warm, (size_t)steps, sizeof *times, cmp_double);
    double med = times[warm + steps / 2];
    qsort(cpu + warm, (size_t)steps, sizeof *cpu, cmp_double);
    double cpu_med = cpu[warm + steps / 2], cpu_best = cpu[warm];

    conv_layer convs[64];
    int nconv = list_convs(&rc, hw, convs, 64);
    double macs = 0;
    for (int i = 0; i < nconv; i++) macs += conv_macs(&convs[i]);
    double gflop = 3.0 * 2.0 * macs * (double)views / 1e9; /* fwd + data grad + weight grad */
    if (frames > 1) gflop = 0; /* the image encoder's count does not apply (see --frames) */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"engine\": \"contrast\", \"views_per_s\": %.1f, \"gflops\": %.1f, \"peak_rss_mb\": %.1f, "
           "\"threads\": %d, \"batch\": %d, \"real_data\": %s, \"loss\": %.4f, \"blas_core\": \"%s\", "
           "\"kernels\": \"%s\", \"gflop_per_step\": %.1f, \"cpu_ms_per_step\": %.0f, \"cpu_ms_best_step\": %.0f, "
           "\"frames\": %d, \"precision\": \"%s\"}\n",
           (double)views / med, gflop / med, ru.ru_maxrss / 1024.0, threads, batch, real ? "true" : "false",
           loss_v, openblas_get_corename(), ct_simd_name(ct_engine_simd(&bench_engine)), gflop, cpu_med * 1e3,
           cpu_best * 1e3, frames, ct_precision_name(ct_engine_precision(&bench_engine)));
    fflush(stdout);

    if (profile) {
        fprintf(stderr, "step time %.1f ms (median): forward %.1f ms, backward %.1f ms, optimizer+reset %.1f ms "
                        "(means); arena peak %.1f MB\n",
                med * 1e3, t_fwd / steps * 1e3, t_bwd / steps * 1e3, t_opt / steps * 1e3,
                ct_graph_arena_peak(g) / 1048576.0);
        fprintf(stderr, "%-22s %8s %8s %8s %8s %8s\n", "conv layer (isolated)", "MMAC/img", "fwd ms",
                "GFLOP/s", "bwd ms", "GFLOP/s");
        double sf = 0, sb = 0;
        for (int i = 0; i < nconv; i++) {
            double f, b, fl = 2.0 * conv_macs(&convs[i]) * (double)views;
            profile_conv(&convs[i], views, &f, &b);
            double bfl = convs[i].cin > 1 ? 2 * fl : fl;
            fprintf(stderr, "%-22s %8.2f %8.1f %8.1f %8.1f %8.1f\n", convs[i].name, conv_macs(&convs[i]) / 1e6,
                    f * 1e3, fl / f / 1e9, b * 1e3, bfl / b / 1e9);
            sf += f, sb += b;
        }
        fprintf(stderr, "%-22s %8s %8.1f %8s %8.1f\n", "all convs", "", sf * 1e3, "", sb * 1e3);
    }
    free(times), free(cpu), free(pixels), free(group), free(clips);
    ct_graph_free(g);
    ct_optim_free(opt);
    ct_resnet_free(enc);
    ct_clip_resnet_free(clip_enc);
    ct_params_free(store);
    ct_threadpool_free(pool);
    return 0;
}
