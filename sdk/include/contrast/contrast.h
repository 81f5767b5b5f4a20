/* contrast SDK — umbrella header. Include this from plugins and programs. */
#ifndef CONTRAST_CONTRAST_H
#define CONTRAST_CONTRAST_H

#include "image.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "plugin.h"
#include "rng.h"
#include "settings.h"
#include "status.h"
#include "engine.h"
#include "tensor.h"
#include "threadpool.h"
#include "version.h"
#include "blas.h"
#include "models.h"
#include "mlp.h"
#include "safetensors.h"
#include "video.h"

#endif
