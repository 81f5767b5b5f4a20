/* contrast SDK — reusable model builders.
 *
 * The ResNet family lives in the SDK (not only in the `resnet` encoder
 * plugin) so that benchmarks, tests and other plugins (a key encoder, a
 * predictor) can build exactly the same network without the plugin loader;
 * the plugin is a thin wrapper that maps its settings to ct_resnet_config. */
#ifndef CONTRAST_MODELS_H
#define CONTRAST_MODELS_H

#include "params.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CT_RESNET_MAX_STAGES 8

typedef enum ct_resnet_block {
    CT_RESNET_BASIC = 0,      /* two 3x3 convs, expansion 1 (ResNet-18/34) */
    CT_RESNET_BOTTLENECK = 1, /* 1x1, 3x3 (strided), 1x1 x4 expansion (ResNet-50+) */
} ct_resnet_block;

/* The normalisation after every convolution. */
typedef enum ct_resnet_norm {
    CT_RESNET_BATCH_NORM = 0, /* BatchNorm2d: weight, bias, running_mean, running_var, num_batches_tracked */
    CT_RESNET_GROUP_NORM = 1, /* GroupNorm (ct_group_norm): weight and bias only; statistics per sample, so
                               * a batch of patches of one image shares nothing (CPC) */
} ct_resnet_norm;

/* How the convolution weights are initialised (batch/group norm weights are
 * 1, biases 0 either way). */
typedef enum ct_resnet_init {
    CT_RESNET_INIT_KAIMING_FAN_OUT = 0, /* N(0, 2 / fan_out): torchvision's ResNet (kaiming_normal_, mode
                                         * fan_out, relu); fan_out = out channels x k x k */
    CT_RESNET_INIT_PYTORCH_DEFAULT = 1, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): nn.Conv2d's own reset_parameters
                                         * (kaiming_uniform_ a = sqrt(5)); fan_in = in channels x k x k. Weights
                                         * about 2.4x smaller than kaiming for a 3x3 conv of equal widths, so
                                         * Adam's fixed-size steps turn them faster */
} ct_resnet_init;

typedef struct ct_resnet_config {
    ct_resnet_block block;
    int n_stages;                      /* 1 .. CT_RESNET_MAX_STAGES */
    int blocks[CT_RESNET_MAX_STAGES];  /* blocks per stage, >= 1 */
    int widths[CT_RESNET_MAX_STAGES];  /* planes per stage (x4 output for bottleneck) */
    int in_channels;                   /* input image channels */
    bool imagenet_stem;                /* 7x7/2 conv + 3x3/2 max-pool; else 3x3/1 conv */
    int stem_width;                    /* channels of conv1 */
    float bn_momentum;                 /* 0: PyTorch's 0.1 */
    float bn_eps;                      /* 0: PyTorch's 1e-5 */
    /* Since ABI 1.2 (zero: batch norm, as before). */
    ct_resnet_norm norm;
    int norm_groups;                   /* CT_RESNET_GROUP_NORM: groups per norm (0: 8); divides every width */
    /* Since ABI 1.2 (zero: torchvision's kaiming fan_out, as before). */
    ct_resnet_init init;
} ct_resnet_config;

/* ResNet-18 with the ImageNet stem for `in_channels` inputs. */
ct_resnet_config ct_resnet18_config(int in_channels);

typedef struct ct_resnet ct_resnet;

/* Validate cfg and declare every parameter and buffer in `store` under
 * `prefix` (e.g. "encoder.") with torchvision's names (conv1.weight,
 * bn1.running_mean, layer1.0.conv1.weight, layer2.0.downsample.0.weight,
 * ...), initialised like torchvision (convs kaiming-normal fan_out, batch
 * norm weight 1 bias 0). With group norm the norms keep their names (bn1,
 * layer1.0.bn2, downsample.1: torchvision's norm_layer does the same) and
 * hold weight and bias only. The store is finalized by the caller. The model
 * keeps pointers into the store, which must outlive it. */
ct_status ct_resnet_new(const ct_resnet_config *cfg, ct_params *store, const char *prefix,
                        ct_resnet **out, ct_error *err);

/* Free the model (not its parameters). NULL is ignored. */
void ct_resnet_free(ct_resnet *r);

/* Feature size of ct_resnet_forward's output: last width (x4 for bottleneck). */
int64_t ct_resnet_out_dim(const ct_resnet *r);

/* x (N, in_channels, H, W) -> (N, out_dim) after global average pooling.
 * Batch norm follows ct_graph_is_train(g); in training mode running
 * statistics and num_batches_tracked are updated. Must be called after the
 * store is finalized. */
ct_tensor *ct_resnet_forward(ct_resnet *r, ct_graph *g, ct_tensor *x);

/* ---- the clip encoder (ABI 1.2) ------------------------------------------ */

/* A clip ResNet: the image trunk on every frame, then `temporal_layers`
 * residual blocks relu(bn(conv3d(z)) + z) over the last stage's maps z
 * (N, D, T, h, w) with a (temporal_kernel, spatial_kernel, spatial_kernel)
 * kernel, so the embedding depends on frame order, then the mean over time
 * and space -> (N, D). */
typedef struct ct_clip_resnet_config {
    ct_resnet_config trunk;
    int temporal_layers; /* 0: no temporal part (per-frame features averaged) */
    int temporal_kernel; /* odd, >= 1 (3) */
    int spatial_kernel;  /* odd, >= 1 (1: purely temporal; 3: full 3-D) */
} ct_clip_resnet_config;

typedef struct ct_clip_resnet ct_clip_resnet;

/* Declare the trunk under `prefix` with ct_resnet_new's names (so image
 * checkpoints of the same trunk load) and the temporal blocks as
 * temporal.<i>.conv.weight (O, D, kt, ks, ks) and temporal.<i>.bn.*
 * (PyTorch's Conv3d / BatchNorm3d). The store is finalized by the caller. */
ct_status ct_clip_resnet_new(const ct_clip_resnet_config *cfg, ct_params *store, const char *prefix,
                             ct_clip_resnet **out, ct_error *err);
void ct_clip_resnet_free(ct_clip_resnet *m);
int64_t ct_clip_resnet_out_dim(const ct_clip_resnet *m);

/* x (N, T, C, H, W) clips, or (N, C, H, W) images as one-frame clips ->
 * (N, out_dim). Batch norm follows ct_graph_is_train(g). */
ct_tensor *ct_clip_resnet_forward(ct_clip_resnet *m, ct_graph *g, ct_tensor *x);

/* The last stage's feature maps before the global pool: x (N,
 * in_channels, H, W) -> (N, out_dim, H', W'), so that a clip encoder can
 * mix frames over time before pooling. ct_resnet_forward is this followed
 * by ct_global_avgpool. Since ABI 1.2. */
ct_tensor *ct_resnet_forward_maps(ct_resnet *r, ct_graph *g, ct_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
