/* Gray videos through libavcodec/libavformat (see video_writer.h). */
#include "data/video_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct codec_row {
    const char *name, *encoder, *ext;
} codec_row;

/* The codecs make-dataset offers: our name, libavcodec's encoder, container. */
static const codec_row codecs[] = {
    {"mpeg4", "mpeg4", "avi"},
    {"h264", "libx264", "mp4"},
    {"vp9", "libvpx-vp9", "webm"},
    {"ffv1", "ffv1", "mkv"},
};
#define N_CODECS (sizeof codecs / sizeof codecs[0])

static const codec_row *find_codec(const char *name) {
    for (size_t i = 0; i < N_CODECS; i++)
        if (strcmp(codecs[i].name, name) == 0) return &codecs[i];
    return NULL;
}

const char *ct_video_codec_ext(const char *codec) {
    const codec_row *r = find_codec(codec);
    return r ? r->ext : NULL;
}

#ifdef CONTRAST_HAVE_FFMPEG

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>

struct ct_video_writer {
    AVFormatContext *oc;
    AVCodecContext *c;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    int64_t next_pts;
    bool header_written;
    char path[1024];
};

static void av_msg(int code, char *buf, size_t n) {
    if (av_strerror(code, buf, n) < 0) snprintf(buf, n, "error %d", code);
}

ct_status ct_video_codec_check(const char *codec, ct_error *err) {
    const codec_row *r = find_codec(codec);
    char have[128] = "";
    for (size_t i = 0; i < N_CODECS; i++)
        if (avcodec_find_encoder_by_name(codecs[i].encoder))
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", have[0] ? ", " : "", codecs[i].name);
    if (!r) return ct_error_set(err, CT_ERR_INVALID, "unknown codec '%s' (this build can write: %s)", codec, have);
    if (!avcodec_find_encoder_by_name(r->encoder))
        return ct_error_set(err, CT_ERR_UNSUPPORTED, "codec '%s': this libavcodec has no %s encoder (it can write: %s)",
                            codec, r->encoder, have);
    return CT_OK;
}

/* Per-codec quality: near-transparent, since the data is what is studied. */
static void set_quality(AVCodecContext *c, const char *codec) {
    if (strcmp(codec, "mpeg4") == 0) {
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * 2;
    } else if (strcmp(codec, "h264") == 0) {
        av_opt_set(c->priv_data, "crf", "16", 0);
        av_opt_set(c->priv_data, "preset", "veryfast", 0);
    } else if (strcmp(codec, "vp9") == 0) {
        c->bit_rate = 0;
        av_opt_set(c->priv_data, "crf", "20", 0);
        av_opt_set(c->priv_data, "deadline", "realtime", 0);
        av_opt_set(c->priv_data, "cpu-used", "8", 0);
    }
}

static ct_status fail(ct_video_writer *v, ct_error *err, const char *what, int code) {
    char why[128];
    av_msg(code, why, sizeof why);
    ct_status st = ct_error_set(err, CT_ERR_IO, "%s: %s: %s", v->path, what, why);
    ct_video_writer_close(v, true, NULL);
    return st;
}

ct_status ct_video_writer_open(const char *path, const char *codec, int w, int h, int fps, int gop,
                               ct_video_writer **out, ct_error *err) {
    *out = NULL;
    ct_status st = ct_video_codec_check(codec, err);
    if (st != CT_OK) return st;
    if (w <= 0 || h <= 0 || w % 2 || h % 2 || fps <= 0)
        return ct_error_set(err, CT_ERR_INVALID, "%s: frames must have an even, positive size (got %dx%d) and fps > 0",
                            path, w, h);
    ct_video_writer *v = calloc(1, sizeof *v);
    if (!v) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    snprintf(v->path, sizeof v->path, "%s", path);
    const AVCodec *enc = avcodec_find_encoder_by_name(find_codec(codec)->encoder);
    int r = avformat_alloc_output_context2(&v->oc, NULL, NULL, path);
    if (r < 0 || !v->oc) return fail(v, err, "no container for this file name", r);
    if (!(v->st = avformat_new_stream(v->oc, NULL)) || !(v->c = avcodec_alloc_context3(enc)) ||
        !(v->frame = av_frame_alloc()) || !(v->pkt = av_packet_alloc()))
        return fail(v, err, "cannot allocate the encoder", AVERROR(ENOMEM));
    AVCodecContext *c = v->c;
    c->width = w;
    c->height = h;
    c->time_base = (AVRational){1, fps};
    c->framerate = (AVRational){fps, 1};
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->color_range = AVCOL_RANGE_MPEG;
    c->gop_size = gop;
    c->max_b_frames = 0;
    c->thread_count = 1;
    set_quality(c, codec);
    if (v->oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((r = avcodec_open2(c, enc, NULL)) < 0) return fail(v, err, "cannot open the encoder", r);
    if ((r = avcodec_parameters_from_context(v->st->codecpar, c)) < 0) return fail(v, err, "encoder parameters", r);
    v->st->time_base = c->time_base;
    v->frame->format = c->pix_fmt;
    v->frame->width = w;
    v->frame->height = h;
    if ((r = av_frame_get_buffer(v->frame, 0)) < 0) return fail(v, err, "frame buffer", r);
    if ((r = avio_open(&v->oc->pb, path, AVIO_FLAG_WRITE)) < 0) return fail(v, err, "cannot create", r);
    if ((r = avformat_write_header(v->oc, NULL)) < 0) return fail(v, err, "cannot write the header", r);
    v->header_written = true;
    *out = v;
    return CT_OK;
}

/* Send one frame (NULL: flush) and write every packet that comes out. */
static int encode(ct_video_writer *v, AVFrame *f) {
    int r = avcodec_send_frame(v->c, f);
    while (r >= 0) {
        r = avcodec_receive_packet(v->c, v->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return 0;
        if (r < 0) return r;
        av_packet_rescale_ts(v->pkt, v->c->time_base, v->st->time_base);
        v->pkt->stream_index = v->st->index;
        r = av_interleaved_write_frame(v->oc, v->pkt);
    }
    return r;
}

ct_status ct_video_writer_frame(ct_video_writer *v, const uint8_t *luma, ct_error *err) {
    int r = av_frame_make_writable(v->frame);
    if (r < 0) return ct_error_set(err, CT_ERR_NOMEM, "%s: no writable frame buffer", v->path);
    AVFrame *f = v->frame;
    /* Studio range (16..235), which every decoder and container assumes
     * when nothing says otherwise; readers expand it back to 0..255. */
    for (int y = 0; y < f->height; y++) {
        uint8_t *row = f->data[0] + (size_t)y * f->linesize[0];
        const uint8_t *src = luma + (size_t)y * f->width;
        for (int x = 0; x < f->width; x++) row[x] = (uint8_t)(16 + (src[x] * 219 + 127) / 255);
    }
    for (int y = 0; y < f->height / 2; y++) {
        memset(f->data[1] + (size_t)y * f->linesize[1], 128, (size_t)f->width / 2);
        memset(f->data[2] + (size_t)y * f->linesize[2], 128, (size_t)f->width / 2);
    }
    f->pts = v->next_pts++;
    if ((r = encode(v, f)) < 0) {
        char why[128];
        av_msg(r, why, sizeof why);
        return ct_error_set(err, CT_ERR_IO, "%s: encoding frame %lld: %s", v->path, (long long)f->pts, why);
    }
    return CT_OK;
}

ct_status ct_video_writer_close(ct_video_writer *v, bool abandon, ct_error *err) {
    if (!v) return CT_OK;
    ct_status st = CT_OK;
    if (!abandon && v->header_written) {
        int r = encode(v, NULL);
        if (r >= 0) r = av_write_trailer(v->oc);
        if (r < 0) {
            char why[128];
            av_msg(r, why, sizeof why);
            st = ct_error_set(err, CT_ERR_IO, "%s: finishing the file: %s", v->path, why);
        }
    }
    if (v->oc && v->oc->pb) avio_closep(&v->oc->pb);
    avformat_free_context(v->oc);
    avcodec_free_context(&v->c);
    av_frame_free(&v->frame);
    av_packet_free(&v->pkt);
    free(v);
    return st;
}

#else /* built without FFmpeg */

struct ct_video_writer {
    int unused;
};

ct_status ct_video_codec_check(const char *codec, ct_error *err) {
    return ct_error_set(err, CT_ERR_UNSUPPORTED,
                        "cannot write '%s' videos: contrast was built without FFmpeg (install libavformat-dev "
                        "libavcodec-dev libavutil-dev and rebuild)",
                        codec);
}

ct_status ct_video_writer_open(const char *path, const char *codec, int w, int h, int fps, int gop,
                               ct_video_writer **out, ct_error *err) {
    (void)path, (void)w, (void)h, (void)fps, (void)gop;
    *out = NULL;
    return ct_video_codec_check(codec, err);
}

ct_status ct_video_writer_frame(ct_video_writer *v, const uint8_t *luma, ct_error *err) {
    (void)v, (void)luma;
    return ct_error_set(err, CT_ERR_UNSUPPORTED, "contrast was built without FFmpeg");
}

ct_status ct_video_writer_close(ct_video_writer *v, bool abandon, ct_error *err) {
    (void)v, (void)abandon, (void)err;
    return CT_OK;
}

#endif
