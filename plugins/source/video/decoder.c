/* One open video file: libavformat demuxes, libavcodec decodes (one
 * thread: parallelism comes from the pipeline's workers, each with its own
 * decoders), libswscale converts to gray or RGB at the requested size.
 *
 * Time: t = 0 is the first decoded frame (its pts is the index's
 * start_pts); the frame shown at t is the last one whose pts is <= t, so a
 * request is answered identically whether the decoder seeked or decoded
 * from the start. A seek goes to the keyframe at or before the target
 * (AVSEEK_FLAG_BACKWARD); when a demuxer lands after the target anyway, the
 * seek is retried further back, and finally the file is reopened and
 * decoded from the start: a bounded number of attempts, and a bounded
 * number of decoded frames per request, so a broken file cannot hang a
 * worker. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "video_core.h"

struct vd_decoder {
    char *path;
    vd_limits lim;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    int stream;
    AVRational tb;
    int64_t tick;          /* one frame in time-base ticks (frames without pts) */
    AVPacket *pkt;
    AVFrame *held, *ahead; /* last frame at or before the target; the one after it */
    bool have_held, have_ahead;
    int64_t held_pts, ahead_pts, last_pts;
    bool flushing, eof;    /* demuxer drained / decoder drained */
    bool at_start;         /* nothing read since the file was (re)opened */
    int64_t decoded;       /* frames decoded in the current request */
    struct SwsContext *sws;
    int sws_full_range;    /* source range the context was set up for, -1: none */
    uint8_t *px;
    size_t px_cap;
};

static void av_msg(int code, char *buf, size_t n) {
    if (av_strerror(code, buf, n) < 0) snprintf(buf, n, "error %d", code);
}

static void close_streams(vd_decoder *d) {
    avcodec_free_context(&d->dec);
    avformat_close_input(&d->fmt);
    av_frame_unref(d->held);
    av_frame_unref(d->ahead);
    d->have_held = d->have_ahead = false;
}

/* Open the container and the decoder of its best video stream. */
static ct_status open_streams(vd_decoder *d, char *msg) {
    char why[128];
    struct stat sb;
    if (stat(d->path, &sb) != 0) {
        snprintf(msg, VD_MSG_MAX, "cannot open: %s", strerror(errno));
        return CT_ERR_IO;
    }
    if (sb.st_size == 0) {
        snprintf(msg, VD_MSG_MAX, "empty file");
        return CT_ERR_FORMAT;
    }
    int r = avformat_open_input(&d->fmt, d->path, NULL, NULL);
    if (r < 0) {
        av_msg(r, why, sizeof why);
        snprintf(msg, VD_MSG_MAX, "not a readable video file: %s", why);
        return CT_ERR_FORMAT;
    }
    if ((r = avformat_find_stream_info(d->fmt, NULL)) < 0) {
        av_msg(r, why, sizeof why);
        snprintf(msg, VD_MSG_MAX, "cannot read the stream information: %s", why);
        return CT_ERR_FORMAT;
    }
    const AVCodec *codec = NULL;
    r = av_find_best_stream(d->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (r == AVERROR_STREAM_NOT_FOUND) {
        snprintf(msg, VD_MSG_MAX, "no video stream");
        return CT_ERR_FORMAT;
    }
    if (r < 0 || !codec) {
        snprintf(msg, VD_MSG_MAX, "no decoder for its video codec (%s)",
                 r >= 0 ? avcodec_get_name(d->fmt->streams[r]->codecpar->codec_id) : "unknown");
        return CT_ERR_UNSUPPORTED;
    }
    d->stream = r;
    AVStream *st = d->fmt->streams[r];
    const AVCodecParameters *par = st->codecpar;
    if (par->width <= 0 || par->height <= 0 || (int64_t)par->width * par->height > d->lim.max_pixels) {
        snprintf(msg, VD_MSG_MAX, "frame size %dx%d is empty or above max_pixels = %lld", par->width, par->height,
                 (long long)d->lim.max_pixels);
        return CT_ERR_FORMAT;
    }
    d->tb = st->time_base;
    if (d->tb.num <= 0 || d->tb.den <= 0) d->tb = (AVRational){1, 90000};
    AVRational fr = av_guess_frame_rate(d->fmt, st, NULL);
    if (fr.num <= 0 || fr.den <= 0) fr = (AVRational){25, 1};
    d->tick = av_rescale_q(1, av_inv_q(fr), d->tb);
    if (d->tick <= 0) d->tick = 1;
    if (!(d->dec = avcodec_alloc_context3(codec))) {
        snprintf(msg, VD_MSG_MAX, "out of memory");
        return CT_ERR_NOMEM;
    }
    if ((r = avcodec_parameters_to_context(d->dec, par)) < 0 ||
        (d->dec->thread_count = 1, r = avcodec_open2(d->dec, codec, NULL)) < 0) {
        av_msg(r, why, sizeof why);
        snprintf(msg, VD_MSG_MAX, "cannot open the %s decoder: %s", codec->name, why);
        return CT_ERR_FORMAT;
    }
    d->flushing = d->eof = false;
    d->at_start = true;
    d->last_pts = INT64_MIN;
    return CT_OK;
}

ct_status vd_decoder_open(const char *path, const vd_limits *lim, vd_decoder **out, char *msg) {
    *out = NULL;
    vd_decoder *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path)) || !(d->pkt = av_packet_alloc()) || !(d->held = av_frame_alloc()) ||
        !(d->ahead = av_frame_alloc())) {
        vd_decoder_close(d);
        snprintf(msg, VD_MSG_MAX, "out of memory");
        return CT_ERR_NOMEM;
    }
    d->lim = *lim;
    d->sws_full_range = -1;
    ct_status st = open_streams(d, msg);
    if (st != CT_OK) {
        vd_decoder_close(d);
        return st;
    }
    *out = d;
    return CT_OK;
}

void vd_decoder_close(vd_decoder *d) {
    if (!d) return;
    if (d->held) close_streams(d);
    av_frame_free(&d->held);
    av_frame_free(&d->ahead);
    av_packet_free(&d->pkt);
    sws_freeContext(d->sws);
    free(d->px);
    free(d->path);
    free(d);
}

const char *vd_decoder_path(const vd_decoder *d) { return d->path; }

static double pts_seconds(const vd_decoder *d, int64_t pts, int64_t start) {
    return (double)(pts - start) * d->tb.num / d->tb.den;
}

/* Decode the next frame into `into`: CT_OK with *got = true, or *got =
 * false at the end of the stream. */
static ct_status decode_next(vd_decoder *d, AVFrame *into, int64_t *pts, bool *got, char *msg) {
    char why[128];
    *got = false;
    d->at_start = false;
    for (;;) {
        int r = avcodec_receive_frame(d->dec, into);
        if (r == 0) {
            int64_t p = into->best_effort_timestamp;
            if (p == AV_NOPTS_VALUE) p = d->last_pts == INT64_MIN ? 0 : d->last_pts + d->tick;
            d->last_pts = *pts = p;
            if (++d->decoded > d->lim.max_decode_frames) {
                snprintf(msg, VD_MSG_MAX, "gave up after decoding %lld frames for one request (max_decode_frames)",
                         (long long)d->lim.max_decode_frames);
                return CT_ERR_FORMAT;
            }
            *got = true;
            return CT_OK;
        }
        if (r == AVERROR_EOF) {
            d->eof = true;
            return CT_OK;
        }
        if (r != AVERROR(EAGAIN)) {
            av_msg(r, why, sizeof why);
            snprintf(msg, VD_MSG_MAX, "decode error after t = %.3f s: %s",
                     d->last_pts == INT64_MIN ? 0.0 : pts_seconds(d, d->last_pts, 0), why);
            return CT_ERR_FORMAT;
        }
        if (d->flushing) { /* a drained decoder that still asks for input */
            d->eof = true;
            return CT_OK;
        }
        r = av_read_frame(d->fmt, d->pkt);
        if (r == AVERROR_EOF) {
            d->flushing = true;
            avcodec_send_packet(d->dec, NULL);
            continue;
        }
        if (r < 0) {
            av_msg(r, why, sizeof why);
            snprintf(msg, VD_MSG_MAX, "read error after t = %.3f s: %s",
                     d->last_pts == INT64_MIN ? 0.0 : pts_seconds(d, d->last_pts, 0), why);
            return CT_ERR_IO;
        }
        if (d->pkt->stream_index != d->stream) {
            av_packet_unref(d->pkt);
            continue;
        }
        int64_t ppts = d->pkt->pts != AV_NOPTS_VALUE ? d->pkt->pts : d->pkt->dts;
        r = avcodec_send_packet(d->dec, d->pkt);
        av_packet_unref(d->pkt);
        if (r < 0 && r != AVERROR(EAGAIN)) {
            av_msg(r, why, sizeof why);
            snprintf(msg, VD_MSG_MAX, "decode error at t = %.3f s (stream time): %s",
                     ppts == AV_NOPTS_VALUE ? 0.0 : pts_seconds(d, ppts, 0), why);
            return CT_ERR_FORMAT;
        }
    }
}

/* Advance until `held` is the last frame with pts <= target (or the
 * stream ends). */
static ct_status step_to(vd_decoder *d, int64_t target, char *msg) {
    for (;;) {
        if (!d->have_ahead) {
            if (d->eof) return CT_OK;
            bool got;
            ct_status st = decode_next(d, d->ahead, &d->ahead_pts, &got, msg);
            if (st != CT_OK || !got) return st;
            d->have_ahead = true;
        }
        if (d->ahead_pts > target) return CT_OK;
        AVFrame *t = d->held;
        d->held = d->ahead;
        d->ahead = t;
        av_frame_unref(d->ahead);
        d->held_pts = d->ahead_pts;
        d->have_held = true;
        d->have_ahead = false;
    }
}

/* Back to the first frame by reopening (works for every demuxer, seekable
 * or not). */
static ct_status rewind_file(vd_decoder *d, char *msg) {
    close_streams(d);
    return open_streams(d, msg);
}

static void forget_frames(vd_decoder *d) {
    av_frame_unref(d->held);
    av_frame_unref(d->ahead);
    d->have_held = d->have_ahead = false;
    d->flushing = d->eof = false;
    d->last_pts = INT64_MIN;
}

/* Make `held` the frame shown at `target`: decode forward when it is just
 * ahead, else seek to a keyframe before it (further back when the demuxer
 * lands after it), else decode from the start. */
/* True when decoding forward from `held` reaches target at least as fast
 * as a seek would: no keyframe lies after the current frame and at or
 * before the target (from the demuxer's index), or, without an index, the
 * target is at most forward_seconds ahead. forward_seconds = 0 always
 * seeks (the tests use it to compare seeks with decoding from the start). */
static bool forward_is_cheaper(vd_decoder *d, int64_t target) {
    if (!d->have_held || d->held_pts > target || d->lim.forward_s <= 0.0) return false;
    AVStream *st = d->fmt->streams[d->stream];
    int k = av_index_search_timestamp(st, target, AVSEEK_FLAG_BACKWARD);
    const AVIndexEntry *e = k >= 0 ? avformat_index_get_entry(st, k) : NULL;
    if (e && (e->flags & AVINDEX_KEYFRAME) && e->timestamp <= d->held_pts) return true;
    return target - d->held_pts <= (int64_t)(d->lim.forward_s * d->tb.den / d->tb.num);
}

static ct_status position(vd_decoder *d, int64_t target, int64_t start, char *msg) {
    bool forward = d->at_start || forward_is_cheaper(d, target);
    if (forward) {
        bool from_start = d->at_start;
        ct_status st = step_to(d, target, msg);
        /* From the start, a target before the first frame gets the first. */
        if (st != CT_OK || d->have_held || !d->have_ahead || from_start) return st;
    }
    static const double back_s[] = {0.0, 1.0, 4.0, 16.0};
    for (size_t k = 0; k < sizeof back_s / sizeof back_s[0]; k++) {
        int64_t ts = target - (int64_t)(back_s[k] * d->tb.den / d->tb.num);
        if (ts <= start) break;
        if (av_seek_frame(d->fmt, d->stream, ts, AVSEEK_FLAG_BACKWARD) < 0) break;
        avcodec_flush_buffers(d->dec);
        forget_frames(d);
        d->at_start = false;
        d->decoded = 0;
        ct_status st = step_to(d, target, msg);
        if (st != CT_OK) return st;
        if (d->have_held) return CT_OK;
    }
    ct_status st = rewind_file(d, msg);
    d->decoded = 0;
    if (st == CT_OK) st = step_to(d, target, msg);
    return st;
}

/* The frame `f` converted into frame slot `i` of dst. */
static ct_status convert(vd_decoder *d, const AVFrame *f, const vd_output *o, float *dst, char *msg) {
    enum AVPixelFormat want = o->channels == 1 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24;
    struct SwsContext *prev = d->sws;
    d->sws = sws_getCachedContext(d->sws, f->width, f->height, f->format, o->width, o->height, want,
                                  SWS_BILINEAR | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
    /* A full-range (JPEG) frame in a plain YUV format must say so to
     * swscale, which otherwise assumes studio range (16..235). */
    int full = f->color_range == AVCOL_RANGE_JPEG;
    if (d->sws && (d->sws != prev || full != d->sws_full_range)) {
        int *inv, *tab, src_range, dst_range, bright, contrast, sat;
        if (sws_getColorspaceDetails(d->sws, &inv, &src_range, &tab, &dst_range, &bright, &contrast, &sat) >= 0 &&
            full && !src_range)
            sws_setColorspaceDetails(d->sws, inv, 1, tab, dst_range, bright, contrast, sat);
        d->sws_full_range = full;
    }
    if (!d->sws) {
        snprintf(msg, VD_MSG_MAX, "cannot convert %dx%d %s frames", f->width, f->height,
                 av_get_pix_fmt_name(f->format) ? av_get_pix_fmt_name(f->format) : "?");
        return CT_ERR_UNSUPPORTED;
    }
    size_t row = (size_t)o->width * o->channels, need = row * o->height;
    if (need > d->px_cap) {
        uint8_t *p = realloc(d->px, need);
        if (!p) {
            snprintf(msg, VD_MSG_MAX, "out of memory");
            return CT_ERR_NOMEM;
        }
        d->px = p;
        d->px_cap = need;
    }
    uint8_t *planes[4] = {d->px, NULL, NULL, NULL};
    int strides[4] = {(int)row, 0, 0, 0};
    sws_scale(d->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, planes, strides);
    size_t hw = (size_t)o->width * o->height;
    const float s = 1.0f / 255.0f;
    if (o->channels == 1) {
        for (size_t i = 0; i < hw; i++) dst[i] = d->px[i] * s;
    } else {
        for (size_t i = 0; i < hw; i++)
            for (int k = 0; k < 3; k++) dst[k * hw + i] = d->px[3 * i + k] * s;
    }
    return CT_OK;
}

static int64_t time_to_pts(const vd_decoder *d, const vd_meta *m, double t) {
    /* The small bias keeps t = k/fps from rounding just below frame k. */
    return m->start_pts + (int64_t)floor(t * d->tb.den / d->tb.num + 1e-3);
}

ct_status vd_decoder_frames(vd_decoder *d, const vd_meta *meta, double t0, double step, int n,
                            const vd_output *o, ct_image *dst, char *msg) {
    if (!(step >= 0.0) || !isfinite(t0) || !isfinite(step) || n < 1) {
        snprintf(msg, VD_MSG_MAX, "bad request: t0 = %g, step = %g, n = %d", t0, step, n);
        return CT_ERR_INVALID;
    }
    if (ct_image_reshape(dst, n, o->channels, o->height, o->width) != CT_OK) {
        snprintf(msg, VD_MSG_MAX, "out of memory for %d frames", n);
        return CT_ERR_NOMEM;
    }
    d->decoded = 0;
    for (int i = 0; i < n; i++) {
        double t = t0 + i * step;
        int64_t target = time_to_pts(d, meta, t < 0 ? 0 : t);
        ct_status st = i == 0 ? position(d, target, meta->start_pts, msg) : step_to(d, target, msg);
        const AVFrame *f = d->have_held ? d->held : (d->have_ahead ? d->ahead : NULL);
        if (st == CT_OK && !f) {
            snprintf(msg, VD_MSG_MAX, "no frame decodes at t = %.3f s", t);
            st = CT_ERR_FORMAT;
        }
        if (st == CT_OK) st = convert(d, f, o, ct_image_frame(dst, i), msg);
        if (st != CT_OK) return st;
    }
    return CT_OK;
}

/* ---- probing ------------------------------------------------------------------ */

ct_status vd_decoder_probe(vd_decoder *d, bool full, int64_t max_frames, vd_meta *m, char *msg) {
    AVStream *st = d->fmt->streams[d->stream];
    snprintf(m->codec, sizeof m->codec, "%s", avcodec_get_name(st->codecpar->codec_id));
    m->width = st->codecpar->width;
    m->height = st->codecpar->height;
    m->tb_num = d->tb.num;
    m->tb_den = d->tb.den;
    AVRational fr = av_guess_frame_rate(d->fmt, st, NULL);
    m->fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0.0;
    double cont = st->duration != AV_NOPTS_VALUE && st->duration > 0 ? st->duration * av_q2d(d->tb)
                  : d->fmt->duration > 0 ? d->fmt->duration / (double)AV_TIME_BASE : 0.0;
    int64_t count = st->nb_frames > 0 ? st->nb_frames : 0;
    d->decoded = 0;
    int64_t first = 0, last = 0, n = 0;
    bool got;
    ct_status s = decode_next(d, d->ahead, &first, &got, msg);
    if (s != CT_OK) return s;
    if (!got) {
        snprintf(msg, VD_MSG_MAX, "no frame decodes");
        return CT_ERR_FORMAT;
    }
    av_frame_unref(d->ahead);
    m->start_pts = last = first;
    n = 1;
    /* Containers without a duration, a frame count or a rate are counted by decoding. */
    bool decode_all = full || !(cont > 0.0 || count > 0) || m->fps <= 0.0;
    int64_t saved_limit = d->lim.max_decode_frames;
    d->lim.max_decode_frames = max_frames + 2; /* the count below reports the overflow */
    while (decode_all) {
        int64_t p;
        if ((s = decode_next(d, d->ahead, &p, &got, msg)) != CT_OK) return s;
        if (!got) break;
        av_frame_unref(d->ahead);
        if (p > last) last = p;
        if (++n > max_frames) {
            snprintf(msg, VD_MSG_MAX, "more than max_frames = %lld frames", (long long)max_frames);
            return CT_ERR_FORMAT;
        }
    }
    if (decode_all) {
        double span = (last - first) * av_q2d(d->tb);
        if (m->fps <= 0.0) m->fps = n > 1 && span > 0 ? (n - 1) / span : 25.0;
        m->frames = n;
        m->duration = span + 1.0 / m->fps;
        m->verified = true;
    } else {
        m->frames = count > 0 ? count : (int64_t)llround(cont * m->fps);
        m->duration = cont > 0.0 ? cont : m->frames / m->fps;
        m->verified = false;
    }
    d->lim.max_decode_frames = saved_limit;
    return CT_OK;
}
