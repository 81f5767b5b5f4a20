/* clip_resnet: the clip encoder. Each frame goes through the same ResNet
 * trunk as the `resnet` encoder (same settings, same parameter names, so
 * an image checkpoint's trunk loads), then temporal residual blocks of 3-D
 * convolutions over the last stage's maps see the frame order, then the
 * mean over time and space. Images (N,C,H,W) are one-frame clips, so one
 * encoder (one set of weights, one checkpoint) serves image and video
 * pipelines at once: on one frame the temporal convolutions' zero padding
 * leaves only their centre tap, so an image sees the trunk, then
 * relu(bn(W_centre x) + x) per temporal block, then the spatial mean, and
 * every weight it uses is one the clips train too.
 *
 * A thin wrapper over ct_clip_resnet (contrast/models.h). */
#include <string.h>

#include <contrast/contrast.h>
#include <contrast/models.h>

static const ct_param_spec clip_params[] = {
    CT_PARAM_CHOICE("block", "\"basic\"", "basic|bottleneck",
                    "trunk residual block: basic (ResNet-18/34) or bottleneck (ResNet-50+)"),
    CT_PARAM_INTS("blocks", "[2, 2, 2, 2]", 1, 64, "trunk blocks per stage ([2,2,2,2] is ResNet-18)"),
    CT_PARAM_INTS("widths", "[64, 128, 256, 512]", 1, 8192,
                  "trunk planes per stage (bottleneck outputs 4x); stages after the first stride 2"),
    CT_PARAM_INT("in_channels", "0", 0, 64, "input channels (0: take them from the data)"),
    CT_PARAM_CHOICE("stem", "\"imagenet\"", "small|imagenet",
                    "small: 3x3 conv stride 1, no max-pool (28-64 px frames); imagenet: 7x7/2 + max-pool"),
    CT_PARAM_INT("stem_width", "64", 1, 4096, "channels of the stem convolution"),
    CT_PARAM_FLOAT("bn_momentum", "0.1", 1e-6, 1.0, "batch-norm running-average momentum (PyTorch convention)"),
    CT_PARAM_FLOAT("bn_eps", "1e-5", 0.0, 1.0, "batch-norm epsilon"),
    CT_PARAM_INT("temporal_layers", "1", 0, 16,
                 "temporal residual blocks over the last stage's maps (0: per-frame features averaged)"),
    CT_PARAM_INT("temporal_kernel", "3", 1, 31, "frames each temporal convolution sees (odd)"),
    CT_PARAM_INT("spatial_kernel", "1", 1, 7, "spatial size of the temporal convolutions (odd; 1: purely temporal)"),
    CT_PARAM_END,
};

static ct_status trunk_config(const ct_settings *s, const ct_encoder_input *in, ct_resnet_config *c, ct_error *err) {
    memset(c, 0, sizeof *c);
    size_t nb = ct_settings_len(s, "blocks"), nw = ct_settings_len(s, "widths");
    if (nb != nw || nb < 1 || nb > CT_RESNET_MAX_STAGES)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "clip_resnet: %s: blocks (%zu stages) and widths (%zu stages) must have the same length, 1..%d",
                            ct_settings_origin(s, "blocks"), nb, nw, CT_RESNET_MAX_STAGES);
    c->block = strcmp(ct_settings_string(s, "block"), "bottleneck") == 0 ? CT_RESNET_BOTTLENECK : CT_RESNET_BASIC;
    c->n_stages = (int)nb;
    for (size_t i = 0; i < nb; i++) {
        c->blocks[i] = (int)ct_settings_int_at(s, "blocks", i);
        c->widths[i] = (int)ct_settings_int_at(s, "widths", i);
    }
    int64_t ch = ct_settings_int(s, "in_channels");
    if (ch == 0) ch = in ? in->channels : 0;
    if (ch <= 0)
        return ct_error_set(err, CT_ERR_CONFIG, "clip_resnet: in_channels is 0 and the data does not say its channels");
    if (in && in->channels > 0 && in->channels != ch)
        return ct_error_set(err, CT_ERR_CONFIG, "clip_resnet: %s: in_channels = %lld but the data has %d channels",
                            ct_settings_origin(s, "in_channels"), (long long)ch, in->channels);
    c->in_channels = (int)ch;
    c->imagenet_stem = strcmp(ct_settings_string(s, "stem"), "imagenet") == 0;
    c->stem_width = (int)ct_settings_int(s, "stem_width");
    c->bn_momentum = (float)ct_settings_float(s, "bn_momentum");
    c->bn_eps = (float)ct_settings_float(s, "bn_eps");
    if (c->bn_eps <= 0.0f) return ct_error_set(err, CT_ERR_CONFIG, "clip_resnet: bn_eps must be > 0");
    return CT_OK;
}

static ct_status clip_create(const ct_settings *s, const ct_host *host, const ct_encoder_input *in, ct_params *store,
                             const char *prefix, void **self, ct_error *err) {
    (void)host;
    ct_clip_resnet_config c;
    memset(&c, 0, sizeof c);
    ct_status st = trunk_config(s, in, &c.trunk, err);
    if (st != CT_OK) return st;
    c.temporal_layers = (int)ct_settings_int(s, "temporal_layers");
    c.temporal_kernel = (int)ct_settings_int(s, "temporal_kernel");
    c.spatial_kernel = (int)ct_settings_int(s, "spatial_kernel");
    if (c.temporal_kernel % 2 == 0 || c.spatial_kernel % 2 == 0)
        return ct_error_set(err, CT_ERR_CONFIG, "clip_resnet: %s: temporal_kernel (%d) and spatial_kernel (%d) must be odd",
                            ct_settings_origin(s, c.temporal_kernel % 2 == 0 ? "temporal_kernel" : "spatial_kernel"),
                            c.temporal_kernel, c.spatial_kernel);
    ct_clip_resnet *m = NULL;
    if ((st = ct_clip_resnet_new(&c, store, prefix, &m, err)) != CT_OK) return st;
    *self = m;
    return CT_OK;
}

static void clip_destroy(void *self) { ct_clip_resnet_free(self); }

static int64_t clip_out_dim(void *self) { return ct_clip_resnet_out_dim(self); }

static ct_tensor *clip_forward(void *self, ct_graph *g, ct_tensor *x) { return ct_clip_resnet_forward(self, g, x); }

static const ct_encoder_ops clip_ops = {
    .name = "clip_resnet",
    .description = "clip encoder: a ResNet trunk per frame, temporal 3-D convolutions, mean over time and space",
    .params = clip_params,
    .create = clip_create,
    .destroy = clip_destroy,
    .out_dim = clip_out_dim,
    .forward = clip_forward,
    .inputs = CT_ENCODER_IMAGES | CT_ENCODER_CLIPS,
};

static ct_status clip_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_encoder(reg, &clip_ops);
    if (st != CT_OK) ct_error_set(err, st, "clip_resnet: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("clip_resnet", "1.0.0", "MIT", "clip encoder (ResNet trunk per frame + temporal convolutions)",
                 CT_ROLE_ENCODER, clip_init)
