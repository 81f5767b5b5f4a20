/* embed — use libcontrast from your own program: load a ResNet encoder
 * trained by `contrast train` and print the embedding of one image.
 *
 *   embed CHECKPOINT.safetensors (--idx IMAGES INDEX | --pgm FILE.pgm)
 *         [--mean M] [--std S] [--prefix encoder.] [--bn-eps E]
 *
 * The network's shape is read from the checkpoint itself (stem, blocks
 * per stage, widths, block type come from the tensor names and shapes), so
 * no config is needed. The image is scaled to [0, 1] and normalised with
 * (x - mean) / std, as the config's evaluation transforms do (for
 * configs/simclr_fmnist.cfg: --mean 0.2860 --std 0.3530). The embedding is
 * printed on one line, space-separated, with %.9g (exactly what `contrast
 * embed` writes to its .npy file for the same image). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <contrast/contrast.h>
#include <contrast/models.h>
#include <contrast/safetensors.h>

typedef struct options {
    const char *checkpoint, *idx, *pgm, *prefix;
    long index;
    float mean, std, bn_eps;
} options;

static int usage(void) {
    fprintf(stderr, "usage: embed CHECKPOINT (--idx IMAGES INDEX | --pgm FILE.pgm) [--mean M] [--std S]\n"
                    "             [--prefix encoder.] [--bn-eps 1e-5]\n");
    return 2;
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){NULL, NULL, NULL, "encoder.", -1, 0.0f, 1.0f, 1e-5f};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--idx") && i + 2 < argc) o->idx = argv[++i], o->index = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--pgm") && more) o->pgm = argv[++i];
        else if (!strcmp(a, "--mean") && more) o->mean = strtof(argv[++i], NULL);
        else if (!strcmp(a, "--std") && more) o->std = strtof(argv[++i], NULL);
        else if (!strcmp(a, "--prefix") && more) o->prefix = argv[++i];
        else if (!strcmp(a, "--bn-eps") && more) o->bn_eps = strtof(argv[++i], NULL);
        else if (a[0] != '-' && !o->checkpoint) o->checkpoint = a;
        else return usage();
    }
    if (!o->checkpoint || !o->idx == !o->pgm || o->std <= 0.0f || (o->idx && o->index < 0)) return usage();
    return 0;
}

/* ---- the image ------------------------------------------------------------------ */

/* An IDX image file (gzip or raw, via zlib): item `index` into img, [0, 1]. */
static ct_status read_idx(const char *path, long index, ct_image *img, ct_error *err) {
    gzFile z = gzopen(path, "rb");
    if (!z) return ct_error_set(err, CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char h[16];
    ct_status st = CT_OK;
    if (gzread(z, h, 16) != 16 || h[0] || h[1] || h[2] != 0x08 || h[3] != 3) {
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: not an IDX file of unsigned-byte images (N x rows x cols)", path);
    } else {
        long n = (long)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
        int rows = h[8] << 24 | h[9] << 16 | h[10] << 8 | h[11], cols = h[12] << 24 | h[13] << 16 | h[14] << 8 | h[15];
        size_t px = (size_t)rows * (size_t)cols;
        unsigned char *buf = malloc(px ? px : 1);
        if (index >= n) st = ct_error_set(err, CT_ERR_INVALID, "%s: item %ld but the file holds %ld", path, index, n);
        else if (!buf || ct_image_reshape(img, 1, 1, rows, cols) != CT_OK) st = ct_error_set(err, CT_ERR_NOMEM, "out of memory");
        else if (gzseek(z, (z_off_t)(16 + (size_t)index * px), SEEK_SET) < 0 || gzread(z, buf, (unsigned)px) != (int)px)
            st = ct_error_set(err, CT_ERR_FORMAT, "%s: truncated at item %ld", path, index);
        for (size_t i = 0; st == CT_OK && i < px; i++) img->data[i] = (float)buf[i] / 255.0f;
        free(buf);
    }
    gzclose(z);
    return st;
}

/* A binary PGM (P5, maxval <= 255) into img, [0, 1]. */
static ct_status read_pgm(const char *path, ct_image *img, ct_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct_error_set(err, CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int w = 0, h = 0, maxval = 0;
    ct_status st = CT_OK;
    if (fscanf(f, "P5 %d %d %d", &w, &h, &maxval) != 3 || fgetc(f) == EOF || w <= 0 || h <= 0 || w > 65536 ||
        h > 65536 || maxval <= 0 || maxval > 255)
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: not a binary 8-bit PGM (P5 W H MAXVAL)", path);
    size_t px = (size_t)w * (size_t)h;
    unsigned char *buf = st == CT_OK ? malloc(px) : NULL;
    if (st == CT_OK && (!buf || ct_image_reshape(img, 1, 1, h, w) != CT_OK)) st = ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    if (st == CT_OK && fread(buf, 1, px, f) != px) st = ct_error_set(err, CT_ERR_FORMAT, "%s: truncated pixel data", path);
    for (size_t i = 0; st == CT_OK && i < px; i++) img->data[i] = (float)buf[i] / (float)maxval;
    free(buf);
    fclose(f);
    return st;
}

/* ---- the network, from the checkpoint's own tensors ----------------------------- */

static const ct_safetensors_tensor *find(const ct_safetensors *f, const char *prefix, const char *fmt, int a, int b) {
    char part[96], name[256];
    snprintf(part, sizeof part, fmt, a, b);
    snprintf(name, sizeof name, "%s%s", prefix, part);
    return ct_safetensors_find(f, name);
}

/* torchvision names: conv1.weight (stem), layer<s>.<b>.conv1.weight, and
 * conv3 in bottleneck blocks. */
static ct_status infer_resnet(const ct_safetensors *f, const options *o, ct_resnet_config *c, ct_error *err) {
    memset(c, 0, sizeof *c);
    const ct_safetensors_tensor *stem = find(f, o->prefix, "conv1.weight", 0, 0);
    if (!stem || stem->ndim != 4)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: no ResNet stem '%sconv1.weight' (is it a resnet encoder?)",
                            o->checkpoint, o->prefix);
    c->stem_width = (int)stem->shape[0];
    c->in_channels = (int)stem->shape[1];
    c->imagenet_stem = stem->shape[2] == 7;
    c->block = find(f, o->prefix, "layer1.0.conv3.weight", 0, 0) ? CT_RESNET_BOTTLENECK : CT_RESNET_BASIC;
    c->bn_eps = o->bn_eps;
    while (c->n_stages < CT_RESNET_MAX_STAGES) {
        const ct_safetensors_tensor *first = find(f, o->prefix, "layer%d.%d.conv1.weight", c->n_stages + 1, 0);
        if (!first) break;
        int blocks = 1;
        while (find(f, o->prefix, "layer%d.%d.conv1.weight", c->n_stages + 1, blocks)) blocks++;
        c->widths[c->n_stages] = (int)first->shape[0];
        c->blocks[c->n_stages++] = blocks;
    }
    if (!c->n_stages) return ct_error_set(err, CT_ERR_FORMAT, "%s: no '%slayer1.0.conv1.weight'", o->checkpoint, o->prefix);
    return CT_OK;
}

static ct_status embed(const options *o, ct_error *err) {
    ct_safetensors *f = NULL;
    ct_params *store = ct_params_new(0);
    ct_resnet *net = NULL;
    ct_graph *g = ct_graph_new(0);
    ct_image img = CT_IMAGE_INIT;
    ct_resnet_config cfg;
    if (!store || !g) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    ct_status st = ct_safetensors_open(o->checkpoint, &f, err);
    if (st == CT_OK) st = infer_resnet(f, o, &cfg, err);
    if (st == CT_OK) st = ct_resnet_new(&cfg, store, o->prefix, &net, err);
    if (st == CT_OK) st = ct_params_finalize(store, err);
    if (st == CT_OK) st = ct_safetensors_load_params(f, store, NULL, err);
    if (st == CT_OK) st = o->idx ? read_idx(o->idx, o->index, &img, err) : read_pgm(o->pgm, &img, err);
    if (st == CT_OK && img.c != cfg.in_channels)
        st = ct_error_set(err, CT_ERR_SHAPE, "the image has %d channels, the encoder wants %d", img.c, cfg.in_channels);
    ct_tensor *x = st == CT_OK ? ct_tensor_new4(g, 1, img.c, img.h, img.w) : NULL;
    if (x) {
        for (int64_t i = 0; i < x->numel; i++) x->data[i] = (img.data[i] - o->mean) / o->std;
        ct_graph_set_train(g, false); /* batch norm uses the running statistics */
        ct_graph_set_grad(g, false);
        ct_tensor *y = ct_resnet_forward(net, g, x);
        if (!y) st = ct_error_set(err, ct_graph_status(g), "forward: %s", ct_graph_error(g));
        for (int64_t i = 0; y && i < y->numel; i++) printf(i ? " %.9g" : "%.9g", (double)y->data[i]);
        if (y) printf("\n");
    }
    ct_image_free(&img);
    ct_graph_free(g);
    ct_resnet_free(net);
    ct_params_free(store);
    ct_safetensors_close(f);
    return st;
}

int main(int argc, char **argv) {
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    if (ct_version() >> 16 != CT_ABI_MAJOR) {
        fprintf(stderr, "embed: libcontrast has ABI %u, this program was built for %d\n", ct_version() >> 16, CT_ABI_MAJOR);
        return 1;
    }
    ct_error err = CT_ERROR_INIT;
    if (embed(&o, &err) != CT_OK) {
        fprintf(stderr, "embed: %s\n", err.msg);
        return 1;
    }
    return 0;
}
