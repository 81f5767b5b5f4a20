/* resnet: the ResNet encoder (BasicBlock / Bottleneck, torchvision names).
 *
 * A thin wrapper: the network itself is built by the SDK's
 * ct_resnet_new()/ct_resnet_forward() (contrast/models.h), which benchmarks,
 * tests and other plugins share; this plugin maps its settings to a
 * ct_resnet_config and checks them against the input. */
#include <string.h>

#include <contrast/contrast.h>
#include <contrast/models.h>

static const ct_param_spec resnet_params[] = {
    CT_PARAM_CHOICE("block", "\"basic\"", "basic|bottleneck",
                    "residual block: basic (ResNet-18/34) or bottleneck (ResNet-50+)"),
    CT_PARAM_INTS("blocks", "[2, 2, 2, 2]", 1, 64, "blocks per stage ([2,2,2,2] is ResNet-18)"),
    CT_PARAM_INTS("widths", "[64, 128, 256, 512]", 1, 8192,
                  "planes per stage (bottleneck outputs 4x); stages after the first stride 2"),
    CT_PARAM_INT("in_channels", "0", 0, 64, "input channels (0: take them from the data)"),
    CT_PARAM_CHOICE("stem", "\"imagenet\"", "small|imagenet",
                    "small: 3x3 conv stride 1, no max-pool (28-32 px images); imagenet: 7x7/2 + max-pool"),
    CT_PARAM_INT("stem_width", "64", 1, 4096, "channels of the stem convolution"),
    CT_PARAM_FLOAT("bn_momentum", "0.1", 1e-6, 1.0, "batch-norm running-average momentum (PyTorch convention)"),
    CT_PARAM_FLOAT("bn_eps", "1e-5", 0.0, 1.0, "batch-norm epsilon (also group norm's)"),
    CT_PARAM_CHOICE("norm", "\"batch\"", "batch|group",
                    "normalisation after each conv: batch (BatchNorm2d) or group (GroupNorm: statistics per "
                    "sample, no running stats; for patch-level pretexts such as cpc, where batch norm leaks "
                    "across patches)"),
    CT_PARAM_INT("norm_groups", "8", 1, 4096, "groups of every group norm (divides stem_width and every width)"),
    CT_PARAM_CHOICE("init", "\"kaiming_fan_out\"", "kaiming_fan_out|pytorch_default",
                    "conv weights: kaiming_fan_out = N(0, 2/fan_out), torchvision's ResNet; pytorch_default = "
                    "U(+-1/sqrt(fan_in)), nn.Conv2d's own init (smaller weights: Adam's steps turn them faster)"),
    CT_PARAM_END,
};

static ct_status resnet_create(const ct_settings *s, const ct_host *host, const ct_encoder_input *in,
                               ct_params *store, const char *prefix, void **self, ct_error *err) {
    (void)host;
    ct_resnet_config c;
    memset(&c, 0, sizeof c);
    size_t nb = ct_settings_len(s, "blocks"), nw = ct_settings_len(s, "widths");
    if (nb != nw || nb < 1 || nb > CT_RESNET_MAX_STAGES)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "resnet: %s: blocks (%zu stages) and widths (%zu stages) must have the same "
                            "length, 1..%d",
                            ct_settings_origin(s, "blocks"), nb, nw, CT_RESNET_MAX_STAGES);
    c.block = strcmp(ct_settings_string(s, "block"), "bottleneck") == 0 ? CT_RESNET_BOTTLENECK : CT_RESNET_BASIC;
    c.n_stages = (int)nb;
    for (size_t i = 0; i < nb; i++) {
        c.blocks[i] = (int)ct_settings_int_at(s, "blocks", i);
        c.widths[i] = (int)ct_settings_int_at(s, "widths", i);
    }
    int64_t ch = ct_settings_int(s, "in_channels");
    if (ch == 0) ch = in ? in->channels : 0;
    if (ch <= 0)
        return ct_error_set(err, CT_ERR_CONFIG, "resnet: in_channels is 0 and the data does not say its channels");
    if (in && in->channels > 0 && in->channels != ch)
        return ct_error_set(err, CT_ERR_CONFIG, "resnet: %s: in_channels = %lld but the data has %d channels",
                            ct_settings_origin(s, "in_channels"), (long long)ch, in->channels);
    c.in_channels = (int)ch;
    c.imagenet_stem = strcmp(ct_settings_string(s, "stem"), "imagenet") == 0;
    c.stem_width = (int)ct_settings_int(s, "stem_width");
    c.bn_momentum = (float)ct_settings_float(s, "bn_momentum");
    c.bn_eps = (float)ct_settings_float(s, "bn_eps");
    if (c.bn_eps <= 0.0f) return ct_error_set(err, CT_ERR_CONFIG, "resnet: bn_eps must be > 0");
    c.norm = strcmp(ct_settings_string(s, "norm"), "group") == 0 ? CT_RESNET_GROUP_NORM : CT_RESNET_BATCH_NORM;
    c.norm_groups = (int)ct_settings_int(s, "norm_groups");
    c.init = strcmp(ct_settings_string(s, "init"), "pytorch_default") == 0 ? CT_RESNET_INIT_PYTORCH_DEFAULT
                                                                          : CT_RESNET_INIT_KAIMING_FAN_OUT;
    ct_resnet *r = NULL;
    ct_status st = ct_resnet_new(&c, store, prefix, &r, err);
    if (st != CT_OK) return st;
    *self = r;
    return CT_OK;
}

static void resnet_destroy(void *self) { ct_resnet_free(self); }

static int64_t resnet_out_dim(void *self) { return ct_resnet_out_dim(self); }

static ct_tensor *resnet_forward(void *self, ct_graph *g, ct_tensor *x) { return ct_resnet_forward(self, g, x); }

static const ct_encoder_ops resnet_ops = {
    .name = "resnet",
    .description = "ResNet (basic/bottleneck blocks, small or ImageNet stem), torchvision parameter names",
    .params = resnet_params,
    .create = resnet_create,
    .destroy = resnet_destroy,
    .out_dim = resnet_out_dim,
    .forward = resnet_forward,
    .inputs = CT_ENCODER_IMAGES,
};

static ct_status resnet_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_encoder(reg, &resnet_ops);
    if (st != CT_OK) ct_error_set(err, st, "resnet: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("resnet", "1.0.0", "MIT", "ResNet encoders (torchvision-compatible names)", CT_ROLE_ENCODER,
                 resnet_init)
