/* fuzz_seeds OUT SOURCE_DIR FMNIST_DIR: the fuzzers' seed corpora and the
 * config fuzzer's sandbox, made from real files at build time.
 *
 * The first Fashion-MNIST test images and labels (FMNIST_DIR, the Debian
 * package dataset-fashion-mnist) become: IDX files raw and gzipped
 * (OUT/seeds/idx), CIFAR-10/100 batches of those images padded to 32x32
 * RGB (OUT/seeds/cifar), PNG and JPEG files gray and RGB written by libpng
 * and libjpeg (OUT/seeds/imagefolder), checkpoints written by the host's
 * own writer (OUT/seeds/safetensors), moving Fashion-MNIST clips in MPEG-4
 * and FFV1 made by `contrast make-dataset`'s code (OUT/seeds/video, when
 * the video plugin is built), and the configs of SOURCE_DIR/configs with
 * their data paths made sandbox-relative (OUT/seeds/config). OUT/sandbox
 * holds the small data files those configs name. Each input carries the
 * leading bytes its harness expects (see each fuzz_*.c). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include <jpeglib.h>
#include <png.h>

#include "data/moving_fmnist.h"
#include "training/checkpoint.h"

#define N_IMG 64 /* images taken from the dataset */
#define SIDE 28

static uint8_t pixels[N_IMG][SIDE * SIDE];
static uint8_t labels[N_IMG];
static const char *out_dir;

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_seeds: %s: %s\n", what, detail);
    exit(1);
}

static void make_dir(const char *rel) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", out_dir, rel);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) die("mkdir", p);
}

/* OUT/rel <- [prefix bytes] + data. */
static void put(const char *rel, const uint8_t *prefix, size_t np, const void *data, size_t n) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", out_dir, rel);
    FILE *f = fopen(p, "wb");
    if (!f || (np && fwrite(prefix, 1, np, f) != np) || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0)
        die("cannot write", p);
}

/* gzip data into OUT/rel. */
static void put_gz(const char *rel, const void *data, size_t n) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", out_dir, rel);
    gzFile f = gzopen(p, "wb9");
    if (!f || gzwrite(f, data, (unsigned)n) != (int)n || gzclose(f) != Z_OK) die("cannot gzip", p);
}

static void read_gz(const char *path, size_t skip, void *dst, size_t n) {
    gzFile f = gzopen(path, "rb");
    uint8_t head[16];
    if (!f || gzread(f, head, (unsigned)skip) != (int)skip || gzread(f, dst, (unsigned)n) != (int)n)
        die("cannot read (install dataset-fashion-mnist)", path);
    gzclose(f);
}

static void load_fmnist(const char *dir) {
    char p[1200];
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
    read_gz(p, 16, pixels, sizeof pixels);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
    read_gz(p, 8, labels, sizeof labels);
}

/* ---- IDX ------------------------------------------------------------------ */

static size_t be32(uint8_t *o, uint32_t v) {
    o[0] = (uint8_t)(v >> 24), o[1] = (uint8_t)(v >> 16), o[2] = (uint8_t)(v >> 8), o[3] = (uint8_t)v;
    return 4;
}

/* An IDX images file of the first n images (4 dims with a channel axis
 * when four), into buf; its length. */
static size_t idx_images(uint8_t *buf, int n, bool four) {
    size_t o = 0;
    buf[o++] = 0, buf[o++] = 0, buf[o++] = 8, buf[o++] = four ? 4 : 3;
    o += be32(buf + o, (uint32_t)n);
    if (four) o += be32(buf + o, 1);
    o += be32(buf + o, SIDE);
    o += be32(buf + o, SIDE);
    memcpy(buf + o, pixels, (size_t)n * SIDE * SIDE);
    return o + (size_t)n * SIDE * SIDE;
}

static size_t idx_labels(uint8_t *buf, int n) {
    size_t o = 0;
    buf[o++] = 0, buf[o++] = 0, buf[o++] = 8, buf[o++] = 1;
    o += be32(buf + o, (uint32_t)n);
    memcpy(buf + o, labels, (size_t)n);
    return o + (size_t)n;
}

/* fuzz_idx input: flags, images length (LE16), images, labels. */
static void idx_seed(const char *name, unsigned flags, int n, bool four) {
    static uint8_t im[16 + 4 * SIDE * SIDE * 4], lb[8 + 16], in[sizeof im + sizeof lb + 3];
    size_t ni = idx_images(im, n, four), nl = idx_labels(lb, n);
    in[0] = (uint8_t)flags, in[1] = (uint8_t)ni, in[2] = (uint8_t)(ni >> 8);
    memcpy(in + 3, im, ni);
    memcpy(in + 3 + ni, lb, nl);
    char rel[256];
    snprintf(rel, sizeof rel, "seeds/idx/%s", name);
    put(rel, NULL, 0, in, 3 + ni + (flags & 2 ? nl : 0));
}

static void idx_seeds(void) {
    make_dir("seeds/idx");
    idx_seed("raw_with_labels", 2, 2, false);
    idx_seed("gzip_with_labels", 1 | 2 | 4, 3, false);
    idx_seed("four_dims_limit", 8, 2, true);
    idx_seed("no_labels", 0, 1, false);
}

/* ---- CIFAR ------------------------------------------------------------------ */

/* Image i as a 32x32 RGB record (the 28x28 centred, channels tinted). */
static void cifar_pixels(int i, uint8_t *px) {
    memset(px, 0, 3 * 32 * 32);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++)
                px[c * 1024 + (y + 2) * 32 + x + 2] = (uint8_t)(pixels[i][y * SIDE + x] * (c + 2) / 4);
}

static void cifar_seeds(void) {
    make_dir("seeds/cifar");
    static uint8_t batch[4 * (2 + 3072)];
    for (int variant = 10; variant <= 100; variant += 90) {
        int rec = (variant == 100 ? 2 : 1) + 3072;
        for (int i = 0; i < 4; i++) {
            uint8_t *r = batch + (size_t)i * rec;
            if (variant == 100) r[0] = (uint8_t)(labels[i] * 2), r[1] = (uint8_t)(labels[i] * 10);
            else r[0] = labels[i];
            cifar_pixels(i, r + rec - 3072);
        }
        uint8_t flags = variant == 100 ? 1 : 0;
        put(variant == 100 ? "seeds/cifar/cifar100_fine" : "seeds/cifar/cifar10", &flags, 1, batch, 4 * (size_t)rec);
        flags = 1 | 2 | 4;
        if (variant == 100) put("seeds/cifar/cifar100_coarse_limit", &flags, 1, batch, 4 * (size_t)rec);
        if (variant == 10) put("sandbox/batch.bin", NULL, 0, batch, 4 * (size_t)rec);
    }
}

/* ---- PNG and JPEG -------------------------------------------------------------- */

/* Image i (gray) or images i, i+1, i+2 as the channels of one RGB image. */
static void interleaved(int i, int c, uint8_t *px) {
    for (int p = 0; p < SIDE * SIDE; p++)
        for (int k = 0; k < c; k++) px[p * c + k] = pixels[i + k][p];
}

static uint8_t *png_bytes(int i, int c, size_t *n) {
    uint8_t px[SIDE * SIDE * 3];
    interleaved(i, c, px);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = img.height = SIDE;
    img.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&img, NULL, &size, 0, px, 0, NULL)) die("png size", img.message);
    uint8_t *mem = malloc(size);
    if (!mem || !png_image_write_to_memory(&img, mem, &size, 0, px, 0, NULL)) die("png", img.message);
    *n = size;
    return mem;
}

static uint8_t *jpeg_bytes(int i, int c, size_t *n) {
    uint8_t px[SIDE * SIDE * 3];
    interleaved(i, c, px);
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr em;
    ci.err = jpeg_std_error(&em);
    jpeg_create_compress(&ci);
    unsigned char *mem = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&ci, &mem, &size);
    ci.image_width = ci.image_height = SIDE;
    ci.input_components = c;
    ci.in_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = px + (size_t)ci.next_scanline * SIDE * c;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    *n = size;
    return mem;
}

static void image_seeds(void) {
    make_dir("seeds/imagefolder");
    make_dir("sandbox/imgs");
    make_dir("sandbox/imgs/boot");
    make_dir("sandbox/imgs/shirt");
    static const struct {
        const char *name;
        bool jpeg;
        int c;
        uint8_t flags;
    } k[] = {
        {"gray.png", false, 1, 0}, {"rgb.png", false, 3, 4 | 16}, {"gray.jpg", true, 1, 1 | 4},
        {"rgb.jpg", true, 3, 2 | 8}, {"rgb_headers_only.png", false, 3, 8 | 32},
    };
    for (size_t j = 0; j < sizeof k / sizeof k[0]; j++) {
        size_t n = 0;
        uint8_t *b = k[j].jpeg ? jpeg_bytes((int)j, k[j].c, &n) : png_bytes((int)j, k[j].c, &n);
        char rel[256];
        snprintf(rel, sizeof rel, "seeds/imagefolder/%s", k[j].name);
        put(rel, &k[j].flags, 1, b, n);
        snprintf(rel, sizeof rel, "sandbox/imgs/%s/%s", j % 2 ? "shirt" : "boot", k[j].name);
        put(rel, NULL, 0, b, n);
        free(b);
    }
}

/* ---- safetensors ------------------------------------------------------------------ */

static void move(const char *from, const char *rel) {
    char to[1200];
    snprintf(to, sizeof to, "%s/%s", out_dir, rel);
    if (rename(from, to) != 0) die("rename", from);
}

static void safetensors_seeds(void) {
    make_dir("seeds/safetensors");
    make_dir("seeds/safetensors/run");
    ct_error err = CT_ERROR_INIT;
    /* A training checkpoint and its state file, weights from the pixels. */
    ct_params *p = ct_params_new(0);
    int64_t w[4] = {4, 1, 3, 3}, b[1] = {4}, h[2] = {3, 4};
    ct_params_add(p, "encoder.conv1.weight", CT_PARAM_TRAINABLE, 4, w, CT_INIT_ZEROS, 0, 0, &err);
    ct_params_add(p, "encoder.bn1.running_mean", CT_PARAM_BUFFER, 1, b, CT_INIT_ZEROS, 0, 0, &err);
    ct_params_add(p, "head.0.weight", CT_PARAM_TRAINABLE, 2, h, CT_INIT_ZEROS, 0, 0, &err);
    if (ct_params_finalize(p, &err) != CT_OK) die("store", err.msg);
    float *x = ct_params_data(p);
    for (size_t i = 0; i < ct_params_numel(p); i++) x[i] = pixels[0][300 + i] / 255.0f - 0.5f;
    ct_params_buffer_data(p)[1] = 0.25f;
    ct_optim_config oc = ct_optim_defaults(CT_OPTIM_ADAMW);
    ct_optim *o = ct_optim_new(p, &oc, &err);
    ct_train_progress pr = {1, 7, 42};
    char run[1200], saved[1400], state[1500];
    snprintf(run, sizeof run, "%s/seeds/safetensors/run", out_dir);
    if (!o || ct_checkpoint_save(run, p, o, &pr, "name = \"seed\";\nseed = 42;\n", 0, saved, sizeof saved, &err) != CT_OK)
        die("checkpoint", err.msg);
    ct_checkpoint_state_path(saved, state, sizeof state);
    move(saved, "seeds/safetensors/checkpoint");
    move(state, "seeds/safetensors/checkpoint_state");
    ct_optim_free(o);
    ct_params_free(p);
    /* Real data in other dtypes: images as U8, labels as I64, a scalar. */
    int64_t lab[4];
    for (int i = 0; i < 4; i++) lab[i] = labels[i];
    float mean = 0.286f;
    ct_safetensors_tensor t[3] = {
        {"images", CT_SAFETENSORS_U8, 3, {4, SIDE, SIDE}, pixels, 4 * SIDE * SIDE},
        {"labels", CT_SAFETENSORS_I64, 1, {4}, lab, sizeof lab},
        {"mean", CT_SAFETENSORS_F32, 0, {0}, &mean, sizeof mean},
    };
    ct_st_meta meta[1] = {{"source", "fashion-mnist t10k \"first four\"\n"}};
    char path[1300];
    snprintf(path, sizeof path, "%s/seeds/safetensors/data", out_dir);
    if (ct_safetensors_write(path, t, 3, meta, 1, &err) != CT_OK) die("write", err.msg);
    snprintf(path, sizeof path, "%s/seeds/safetensors/run", out_dir);
    rmdir(path);
}

/* ---- configs and the sandbox --------------------------------------------------------- */

static void sandbox_idx(const char *prefix) {
    static uint8_t im[16 + N_IMG * SIDE * SIDE], lb[8 + N_IMG];
    char rel[256];
    snprintf(rel, sizeof rel, "sandbox/%s-images-idx3-ubyte.gz", prefix);
    put_gz(rel, im, idx_images(im, N_IMG, false));
    snprintf(rel, sizeof rel, "sandbox/%s-labels-idx1-ubyte.gz", prefix);
    put_gz(rel, lb, idx_labels(lb, N_IMG));
}

/* Every .cfg of configs/, comments dropped and the dataset folder removed
 * from its paths; kept when no '/' is left (the harness skips those). */
static void config_seeds(const char *src) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/configs", src);
    DIR *d = opendir(dir);
    if (!d) die("cannot open", dir);
    const char *strip = "/usr/share/datasets/fashion-mnist/";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".cfg") != 0) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) die("cannot read", path);
        static char text[1 << 16];
        size_t n = 0;
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            char *hash = strchr(line, '#');
            if (hash) strcpy(hash, "\n");
            for (char *at; (at = strstr(line, strip));) memmove(at, at + strlen(strip), strlen(at + strlen(strip)) + 1);
            size_t l = strlen(line);
            if (n + l >= sizeof text) die("config too long", path);
            memcpy(text + n, line, l);
            n += l;
        }
        fclose(f);
        if (memchr(text, '/', n)) continue;
        char rel[1400];
        snprintf(rel, sizeof rel, "seeds/config/%s", e->d_name);
        put(rel, NULL, 0, text, n);
    }
    closedir(d);
    static const char folder[] =
        "name = \"folders\";\n"
        "data = {\n"
        "  train = { type = \"imagefolder\"; root = \"imgs\"; size = [16]; channels = 3; };\n"
        "  test = { type = \"cifar\"; files = [\"batch.bin\"]; limit = 3; };\n"
        "};\n"
        "train = { epochs = 1; batch_size = 2; };\n";
    put("seeds/config/folders.cfg", NULL, 0, folder, strlen(folder));
}

/* ---- video ----------------------------------------------------------------------------- */

/* Copy file `from` into OUT/rel behind a flags byte. */
static void put_file(const char *from, const char *rel, uint8_t flags) {
    FILE *f = fopen(from, "rb");
    if (!f) die("cannot read", from);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    put(rel, &flags, 1, buf, n);
}

/* The n-th video file under set/train/<class>/ (directory order). */
static bool nth_clip(const char *set, size_t n, char *out, size_t len) {
    char train[1400];
    snprintf(train, sizeof train, "%s/train", set);
    DIR *d = opendir(train);
    struct dirent *c;
    while (d && (c = readdir(d)) != NULL) {
        if (c->d_name[0] == '.') continue;
        char cls[1700];
        snprintf(cls, sizeof cls, "%s/%s", train, c->d_name);
        DIR *e = opendir(cls);
        struct dirent *f;
        while (e && (f = readdir(e)) != NULL) {
            if (f->d_name[0] == '.' || n-- > 0) continue;
            snprintf(out, len, "%s/%s", cls, f->d_name);
            closedir(e);
            closedir(d);
            return true;
        }
        if (e) closedir(e);
    }
    if (d) closedir(d);
    return false;
}

/* Moving Fashion-MNIST clips (the host's own writer), one per codec. */
static void video_seeds(const char *fmnist) {
    make_dir("seeds/video");
    static const struct {
        const char *codec;
        uint8_t flags;
    } k[] = {{"mpeg4", 0}, {"ffv1", 1 | 8}, {"mpeg4", 2 | 16}};
    for (size_t j = 0; j < sizeof k / sizeof k[0]; j++) {
        ct_mfm_params p;
        ct_mfm_defaults(&p);
        p.videos = 10, p.test_videos = 10, p.frames = 6, p.size = 28, p.pool = 10;
        snprintf(p.codec, sizeof p.codec, "%s", k[j].codec);
        snprintf(p.fmnist_dir, sizeof p.fmnist_dir, "%s", fmnist);
        char set[1300], clip[2000], rel[256];
        snprintf(set, sizeof set, "%s/video-%s", out_dir, k[j].codec);
        ct_error err = CT_ERROR_INIT;
        bool reused = false;
        if (ct_mfm_make(set, &p, false, &reused, &err) != CT_OK) die("moving-fmnist", err.msg);
        if (!nth_clip(set, j, clip, sizeof clip)) die("no clip in", set);
        snprintf(rel, sizeof rel, "seeds/video/%s_%zu", k[j].codec, j);
        put_file(clip, rel, k[j].flags);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: fuzz_seeds OUT SOURCE_DIR FASHION_MNIST_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    load_fmnist(argv[3]);
    make_dir("seeds");
    make_dir("sandbox");
    make_dir("seeds/config");
    idx_seeds();
    cifar_seeds();
    image_seeds();
    safetensors_seeds();
    sandbox_idx("train");
    sandbox_idx("t10k");
    config_seeds(argv[2]);
#ifdef CT_FUZZ_VIDEO
    video_seeds(argv[3]);
#endif
    return 0;
}
