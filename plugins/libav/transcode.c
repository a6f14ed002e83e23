/* plugins/libav/transcode.c - the transcode handler: one video stream
 * decoded, scaled and encoded again, its audio copied, encoded to AAC or
 * left out, into a new file published whole.
 *
 *   transcode in=FILE out=FILE height=N [width=N] [crf=N] [preset=NAME]
 *             [codec=h264|hevc|mpeg4|vp9|av1] [audio=auto|copy|aac|none] [threads=N]
 *
 * height= or width= alone keeps the picture's proportions (the other side
 * rounded to an even number, as ffmpeg's scale=-2:H does); audio=auto (the
 * default) copies the audio when the output's container can hold it and
 * encodes AAC otherwise. One decoder and one encoder thread unless threads=
 * says otherwise: a pool runs one call per CPU. The result:
 *   {"in":..,"out":..,"frames":N,"duration":S,"bytes":N,"width":W,"height":H,
 *    "codec":"h264","audio":"copy"|"aac"|"none","audio_frames":N}
 *
 * FFmpeg 5.1's traps, each met here once: the decoder needs its packets'
 * time base; the scaler is built from the first decoded frame (its format
 * is known only then); thread_count 0 means one per CPU; mp4 wants the
 * codec's global header, asked for before the encoder opens; the muxer may
 * change a stream's time base in avformat_write_header(), so packets are
 * rescaled to the time base it leaves; decoders and encoders are drained by
 * sending NULL; the frame sent to x264 carries no properties of the decoded
 * one (a pict_type copied over forces key frames). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include "libav.h"

static const struct lav_key keys[] = {
    { "in", LAV_PATH, true, 0, 0, NULL },
    { "out", LAV_PATH, true, 0, 0, NULL },
    { "height", LAV_INT, false, 2, 16384, NULL },
    { "width", LAV_INT, false, 2, 16384, NULL },
    { "crf", LAV_NUM, false, -1, 63, NULL },
    { "preset", LAV_TEXT, false, 0, 0, NULL },
    { "codec", LAV_WORD, false, 0, 0, "h264|hevc|mpeg4|vp9|av1" },
    { "audio", LAV_WORD, false, 0, 0, "auto|copy|aac|none" },
    { "threads", LAV_INT, false, 1, 64, NULL },
};

/* codec= names and the encoders that make them, in order of preference */
static const struct {
    const char *name;
    const char *encoders[3];
} codecs[] = {
    { "h264", { "libx264", NULL } },
    { "hevc", { "libx265", NULL } },
    { "mpeg4", { "mpeg4", NULL } },
    { "vp9", { "libvpx-vp9", NULL } },
    { "av1", { "libsvtav1", "libaom-av1", NULL } },
};

enum audio_mode { AUDIO_NONE, AUDIO_COPY, AUDIO_AAC };

struct tc {
    struct lav_call *call;
    char in[PATH_MAX];
    struct lav_output out;
    int threads;
    AVFormatContext *ic, *oc;
    AVPacket *pkt, *opkt;
    AVFrame *frame;
    /* video */
    int vi;                          /* input stream */
    AVCodecContext *vdec, *venc;
    AVStream *vost;
    struct SwsContext *sws;
    AVFrame *scaled;
    int width, height;
    int64_t last_pts;                /* in venc's time base; AV_NOPTS_VALUE before the first */
    int64_t frames;
    /* audio */
    enum audio_mode audio;
    int ai;
    AVCodecContext *adec, *aenc;
    AVStream *aost;
    SwrContext *swr;
    AVAudioFifo *fifo;
    AVFrame *aframe;
    int64_t apts;                    /* next AAC frame's pts, in samples */
    int64_t audio_frames;
    /* what was written: the span of the output's timestamps, in seconds */
    double t_first, t_end;
    bool wrote, opened;
};

/* ---- writing packets ---- */

/* Write PKT (timestamps in time base TB) to output stream OST. 0 or errno. */
static int write_packet(struct tc *t, AVPacket *pkt, AVRational tb, AVStream *ost)
{
    av_packet_rescale_ts(pkt, tb, ost->time_base); /* the time base the muxer left */
    pkt->stream_index = ost->index;
    pkt->pos = -1;
    if (pkt->pts != AV_NOPTS_VALUE) {
        double start = (double)pkt->pts * av_q2d(ost->time_base);
        double end = (double)(pkt->pts + pkt->duration) * av_q2d(ost->time_base);
        if (!t->wrote || start < t->t_first) t->t_first = start;
        if (!t->wrote || end > t->t_end) t->t_end = end;
        t->wrote = true;
    }
    int rc = av_interleaved_write_frame(t->oc, pkt);
    return rc < 0 ? lav_fail_av(t->call, rc, "cannot write", t->out.final) : 0;
}

/* Take every packet ENC has ready (all of them when draining). */
static int drain_encoder(struct tc *t, AVCodecContext *enc, AVStream *ost)
{
    for (;;) {
        int rc = avcodec_receive_packet(enc, t->opkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return lav_fail_av(t->call, rc, "encoding failed for", t->out.final);
        rc = write_packet(t, t->opkt, enc->time_base, ost);
        av_packet_unref(t->opkt);
        if (rc) return rc;
    }
}

/* ---- video ---- */

/* Scale decoded FRAME and send it to the encoder. */
static int encode_video(struct tc *t, const AVFrame *frame)
{
    /* built from the first frame (its format is known only once decoded),
     * and again if a later frame differs */
    t->sws = sws_getCachedContext(t->sws, frame->width, frame->height, frame->format, t->width, t->height,
                                  t->venc->pix_fmt, SWS_BICUBIC, NULL, NULL, NULL);
    if (!t->sws)
        return lav_fail(t->call, EIO, "cannot scale %dx%d %s to %dx%d", frame->width, frame->height,
                        av_get_pix_fmt_name(frame->format), t->width, t->height);
    /* the encoder may still hold the last frame: a copy if so */
    int rc = av_frame_make_writable(t->scaled);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot get a frame for", t->out.final);
    sws_scale(t->sws, (const uint8_t *const *)frame->data, frame->linesize, 0, frame->height, t->scaled->data,
              t->scaled->linesize);
    int64_t pts = frame->best_effort_timestamp;
    if (pts != AV_NOPTS_VALUE) {
        AVRational itb = t->ic->streams[t->vi]->time_base;
        pts = av_rescale_q_rnd(pts, itb, t->venc->time_base, AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
    }
    /* strictly increasing, as encoders and muxers require */
    if (pts == AV_NOPTS_VALUE || (t->last_pts != AV_NOPTS_VALUE && pts <= t->last_pts))
        pts = t->last_pts == AV_NOPTS_VALUE ? 0 : t->last_pts + 1;
    t->last_pts = pts;
    /* only the timestamp: none of the decoded frame's properties (x264
     * makes a key frame of every frame whose pict_type says I) */
    t->scaled->pts = pts;
    t->scaled->pict_type = AV_PICTURE_TYPE_NONE;
    rc = avcodec_send_frame(t->venc, t->scaled);
    if (rc < 0) return lav_fail_av(t->call, rc, "encoding failed for", t->out.final);
    t->frames++;
    return drain_encoder(t, t->venc, t->vost);
}

/* Send PKT (NULL: drain) to the video decoder, encode what comes out. */
static int decode_video(struct tc *t, const AVPacket *pkt)
{
    int rc = avcodec_send_packet(t->vdec, pkt);
    if (rc < 0 && rc != AVERROR_EOF) return lav_fail_av(t->call, rc, "cannot decode the video of", t->in);
    for (;;) {
        rc = avcodec_receive_frame(t->vdec, t->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return lav_fail_av(t->call, rc, "cannot decode the video of", t->in);
        rc = encode_video(t, t->frame);
        av_frame_unref(t->frame);
        if (rc) return rc;
        if ((rc = lav_check_cancel(t->call))) return rc;
    }
}

/* The output's size from the input's and the call's height=/width=. */
static int output_size(struct tc *t, const AVCodecParameters *par)
{
    long h = lav_arg_int(t->call, "height", 0), w = lav_arg_int(t->call, "width", 0);
    if (!h && !w) return lav_fail(t->call, EINVAL, "height= or width= is needed (the output's size)");
    if (par->width <= 0 || par->height <= 0)
        return lav_fail(t->call, EIO, "%s: the video has no size", t->in);
    if (!w) w = av_rescale(h, par->width, (int64_t)par->height * 2) * 2;
    if (!h) h = av_rescale(w, par->height, (int64_t)par->width * 2) * 2;
    if (w < 2 || h < 2) return lav_fail(t->call, EINVAL, "the output would be %ldx%ld: too small", w, h);
    t->width = (int)w, t->height = (int)h;
    return 0;
}

/* The call's KEY, or DEF when not given. */
static const char *arg_or(const struct tc *t, const char *key, const char *def)
{
    const char *v = lav_arg(t->call, key);
    return v ? v : def;
}

/* Set the encoder option NAME=VALUE (the call's key KEY), or say that
 * the encoder has no such option. */
static int encoder_option(struct tc *t, const AVCodec *codec, const char *key, const char *name)
{
    const char *v = lav_arg(t->call, key);
    if (!v) return 0;
    int rc = av_opt_set(t->venc->priv_data, name, v, 0);
    if (rc == AVERROR_OPTION_NOT_FOUND)
        return lav_fail(t->call, EINVAL, "%s=%s: the %s encoder has no such option", key, v, codec->name);
    if (rc < 0) return lav_fail(t->call, EINVAL, "%s=%s: the %s encoder refuses it", key, v, codec->name);
    return 0;
}

static const AVCodec *find_video_encoder(struct tc *t)
{
    const char *name = lav_arg(t->call, "codec");
    if (!name) name = "h264";
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        if (strcmp(codecs[i].name, name) != 0) continue;
        for (const char *const *e = codecs[i].encoders; *e; e++) {
            const AVCodec *c = avcodec_find_encoder_by_name(*e);
            if (c) return c;
        }
        lav_fail(t->call, EINVAL, "codec=%s: this FFmpeg has no %s encoder", name, codecs[i].encoders[0]);
        return NULL;
    }
    lav_fail(t->call, EINVAL, "codec=%s: unknown", name);
    return NULL;
}

static int open_video(struct tc *t)
{
    int vi = av_find_best_stream(t->ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (vi < 0) return lav_fail(t->call, EIO, "%s has no video stream", t->in);
    t->vi = vi;
    AVStream *ist = t->ic->streams[vi];
    int rc = output_size(t, ist->codecpar);
    if (rc) return rc;
    if ((rc = lav_open_decoder(t->call, t->ic, vi, t->threads, &t->vdec))) return rc;
    const AVCodec *codec = find_video_encoder(t);
    if (!codec) return EINVAL;
    if (!(t->venc = avcodec_alloc_context3(codec))) return lav_fail(t->call, ENOMEM, "out of memory");
    AVCodecContext *e = t->venc;
    e->width = t->width;
    e->height = t->height;
    e->pix_fmt = AV_PIX_FMT_YUV420P;
    if (codec->pix_fmts) {
        e->pix_fmt = codec->pix_fmts[0];
        for (const enum AVPixelFormat *f = codec->pix_fmts; *f != AV_PIX_FMT_NONE; f++)
            if (*f == AV_PIX_FMT_YUV420P) e->pix_fmt = *f;
    }
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(e->pix_fmt);
    if (d && ((t->width & ((1 << d->log2_chroma_w) - 1)) || (t->height & ((1 << d->log2_chroma_h) - 1))))
        return lav_fail(t->call, EINVAL, "the output's size %dx%d (height=%s width=%s): %s needs even sides",
                        t->width, t->height, arg_or(t, "height", "(kept in proportion)"),
                        arg_or(t, "width", "(kept in proportion)"), d->name);
    /* the display's proportions kept, as ffmpeg's scale filter keeps them */
    AVRational sar = ist->codecpar->sample_aspect_ratio;
    if (sar.num > 0 && sar.den > 0)
        e->sample_aspect_ratio = av_mul_q((AVRational){ t->height * ist->codecpar->width,
                                                        t->width * ist->codecpar->height }, sar);
    AVRational fr = av_guess_frame_rate(t->ic, ist, NULL);
    e->framerate = fr;
    e->time_base = fr.num > 0 && fr.den > 0 ? av_inv_q(fr) : ist->time_base;
    e->thread_count = t->threads;
    if (t->oc->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((rc = encoder_option(t, codec, "crf", "crf")) || (rc = encoder_option(t, codec, "preset", "preset")))
        return rc;
    rc = avcodec_open2(e, codec, NULL);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot open the encoder", codec->name);
    if (!(t->vost = avformat_new_stream(t->oc, NULL))) return lav_fail(t->call, ENOMEM, "out of memory");
    rc = avcodec_parameters_from_context(t->vost->codecpar, e);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot set up the video of", t->out.final);
    t->vost->time_base = e->time_base;
    t->vost->avg_frame_rate = fr;
    t->vost->sample_aspect_ratio = e->sample_aspect_ratio;
    t->scaled = av_frame_alloc();
    if (!t->scaled) return lav_fail(t->call, ENOMEM, "out of memory");
    t->scaled->format = e->pix_fmt;
    t->scaled->width = e->width;
    t->scaled->height = e->height;
    rc = av_frame_get_buffer(t->scaled, 0);
    return rc < 0 ? lav_fail_av(t->call, rc, "cannot get a frame for", t->out.final) : 0;
}

/* ---- audio ---- */

/* Send the FIFO's samples to the AAC encoder, a whole frame at a time
 * (the rest too when FLUSH). */
static int encode_audio_fifo(struct tc *t, bool flush)
{
    int fs = t->aenc->frame_size;
    while (av_audio_fifo_size(t->fifo) >= fs || (flush && av_audio_fifo_size(t->fifo) > 0)) {
        int n = FFMIN(av_audio_fifo_size(t->fifo), fs);
        AVFrame *f = t->aframe;
        int rc = av_frame_make_writable(f);
        if (rc < 0) return lav_fail_av(t->call, rc, "cannot get a frame for", t->out.final);
        f->nb_samples = n;
        if (av_audio_fifo_read(t->fifo, (void **)f->data, n) < n)
            return lav_fail(t->call, EIO, "the audio buffer lost samples");
        f->pts = t->apts;
        t->apts += n;
        rc = avcodec_send_frame(t->aenc, f);
        if (rc < 0) return lav_fail_av(t->call, rc, "audio encoding failed for", t->out.final);
        t->audio_frames++;
        if ((rc = drain_encoder(t, t->aenc, t->aost))) return rc;
    }
    return 0;
}

/* Resample FRAME (NULL: what the resampler holds) into the FIFO. */
static int resample(struct tc *t, const AVFrame *frame)
{
    int in = frame ? frame->nb_samples : 0;
    int cap = swr_get_out_samples(t->swr, in);
    if (cap <= 0) return 0;
    uint8_t **buf = NULL;
    int rc = av_samples_alloc_array_and_samples(&buf, NULL, t->aenc->ch_layout.nb_channels, cap,
                                                t->aenc->sample_fmt, 0);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot resample the audio of", t->in);
    int n = swr_convert(t->swr, buf, cap, frame ? (const uint8_t **)frame->extended_data : NULL, in);
    if (n < 0) rc = lav_fail_av(t->call, n, "cannot resample the audio of", t->in);
    else if (n > 0 && av_audio_fifo_write(t->fifo, (void **)buf, n) < n) rc = lav_fail(t->call, ENOMEM, "out of memory");
    else rc = 0;
    av_freep(&buf[0]);
    av_freep(&buf);
    return rc;
}

/* Send PKT (NULL: drain) to the audio decoder; resample and encode. */
static int decode_audio(struct tc *t, const AVPacket *pkt)
{
    int rc = avcodec_send_packet(t->adec, pkt);
    if (rc < 0 && rc != AVERROR_EOF) return lav_fail_av(t->call, rc, "cannot decode the audio of", t->in);
    for (;;) {
        rc = avcodec_receive_frame(t->adec, t->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) break;
        if (rc < 0) return lav_fail_av(t->call, rc, "cannot decode the audio of", t->in);
        rc = resample(t, t->frame);
        av_frame_unref(t->frame);
        if (rc || (rc = encode_audio_fifo(t, false))) return rc;
    }
    if (pkt) return 0;
    if ((rc = resample(t, NULL)) || (rc = encode_audio_fifo(t, true))) return rc;
    rc = avcodec_send_frame(t->aenc, NULL);
    if (rc < 0) return lav_fail_av(t->call, rc, "audio encoding failed for", t->out.final);
    return drain_encoder(t, t->aenc, t->aost);
}

static int open_aac(struct tc *t)
{
    int rc = lav_open_decoder(t->call, t->ic, t->ai, 1, &t->adec);
    if (rc) return rc;
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!codec) return lav_fail(t->call, EINVAL, "audio=aac: this FFmpeg has no AAC encoder");
    if (!(t->aenc = avcodec_alloc_context3(codec))) return lav_fail(t->call, ENOMEM, "out of memory");
    AVCodecContext *e = t->aenc, *d = t->adec;
    e->sample_fmt = AV_SAMPLE_FMT_FLTP;
    e->sample_rate = d->sample_rate;
    if (d->ch_layout.nb_channels <= 0) av_channel_layout_default(&e->ch_layout, 2);
    else if (d->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&e->ch_layout, d->ch_layout.nb_channels);
    else if ((rc = av_channel_layout_copy(&e->ch_layout, &d->ch_layout)) < 0)
        return lav_fail(t->call, ENOMEM, "out of memory");
    e->time_base = (AVRational){ 1, e->sample_rate };
    e->thread_count = 1;
    if (t->oc->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    rc = avcodec_open2(e, codec, NULL);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot open the encoder", codec->name);
    rc = swr_alloc_set_opts2(&t->swr, &e->ch_layout, e->sample_fmt, e->sample_rate, &d->ch_layout, d->sample_fmt,
                             d->sample_rate, 0, NULL);
    if (rc >= 0) rc = swr_init(t->swr);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot resample the audio of", t->in);
    t->fifo = av_audio_fifo_alloc(e->sample_fmt, e->ch_layout.nb_channels, e->frame_size * 2);
    t->aframe = av_frame_alloc();
    if (!t->fifo || !t->aframe) return lav_fail(t->call, ENOMEM, "out of memory");
    t->aframe->format = e->sample_fmt;
    t->aframe->nb_samples = e->frame_size;
    t->aframe->sample_rate = e->sample_rate;
    if (av_channel_layout_copy(&t->aframe->ch_layout, &e->ch_layout) < 0 || av_frame_get_buffer(t->aframe, 0) < 0)
        return lav_fail(t->call, ENOMEM, "out of memory");
    if (!(t->aost = avformat_new_stream(t->oc, NULL))) return lav_fail(t->call, ENOMEM, "out of memory");
    rc = avcodec_parameters_from_context(t->aost->codecpar, e);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot set up the audio of", t->out.final);
    t->aost->time_base = e->time_base;
    return 0;
}

static int open_audio(struct tc *t)
{
    const char *mode = lav_arg(t->call, "audio");
    if (!mode) mode = "auto";
    t->audio = AUDIO_NONE;
    t->ai = strcmp(mode, "none") == 0 ? -1 : av_find_best_stream(t->ic, AVMEDIA_TYPE_AUDIO, -1, t->vi, NULL, 0);
    if (t->ai < 0) return 0; /* none asked, or none there: a video without sound */
    AVStream *ist = t->ic->streams[t->ai];
    bool fits = avformat_query_codec(t->oc->oformat, ist->codecpar->codec_id, FF_COMPLIANCE_NORMAL) == 1;
    if (strcmp(mode, "copy") == 0 && !fits)
        return lav_fail(t->call, EINVAL, "audio=copy: a %s file cannot hold %s audio (use audio=aac or audio=none)",
                        t->oc->oformat->name, avcodec_get_name(ist->codecpar->codec_id));
    if (strcmp(mode, "aac") == 0 || !fits) {
        t->audio = AUDIO_AAC;
        return open_aac(t);
    }
    t->audio = AUDIO_COPY;
    if (!(t->aost = avformat_new_stream(t->oc, NULL))) return lav_fail(t->call, ENOMEM, "out of memory");
    int rc = avcodec_parameters_copy(t->aost->codecpar, ist->codecpar);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot set up the audio of", t->out.final);
    t->aost->codecpar->codec_tag = 0; /* the output container's own tag */
    t->aost->time_base = ist->time_base;
    return 0;
}

/* ---- the run ---- */

static int open_output(struct tc *t)
{
    int rc = avformat_alloc_output_context2(&t->oc, NULL, NULL, t->out.final);
    if (rc < 0 || !t->oc)
        return lav_fail(t->call, EINVAL, "out=%s: no container for that name (give it an extension such "
                        "as .mp4 or .mkv)", lav_arg(t->call, "out"));
    return 0;
}

static int start_writing(struct tc *t)
{
    int rc = 0;
    if (!(t->oc->oformat->flags & AVFMT_NOFILE)) {
        rc = avio_open(&t->oc->pb, t->out.tmp, AVIO_FLAG_WRITE);
        if (rc < 0) return lav_fail_av(t->call, rc, "cannot create", t->out.tmp);
    }
    t->opened = true;
    rc = avformat_write_header(t->oc, NULL);
    return rc < 0 ? lav_fail_av(t->call, rc, "cannot write", t->out.final) : 0;
}

/* Every packet of the input through its decoder or straight to the
 * output, then the decoders and encoders drained. */
static int pump(struct tc *t)
{
    int rc;
    for (;;) {
        if ((rc = lav_check_cancel(t->call))) return rc;
        rc = av_read_frame(t->ic, t->pkt);
        if (rc == AVERROR_EOF) break;
        if (rc < 0) return lav_fail_av(t->call, rc, "cannot read", t->in);
        if (t->pkt->stream_index == t->vi) {
            rc = decode_video(t, t->pkt);
        } else if (t->pkt->stream_index == t->ai && t->audio == AUDIO_COPY) {
            rc = write_packet(t, t->pkt, t->ic->streams[t->ai]->time_base, t->aost);
            t->audio_frames++;
        } else if (t->pkt->stream_index == t->ai && t->audio == AUDIO_AAC) {
            rc = decode_audio(t, t->pkt);
        }
        av_packet_unref(t->pkt);
        if (rc) return rc;
    }
    if ((rc = decode_video(t, NULL))) return rc;
    if ((rc = avcodec_send_frame(t->venc, NULL)) < 0)
        return lav_fail_av(t->call, rc, "encoding failed for", t->out.final);
    if ((rc = drain_encoder(t, t->venc, t->vost))) return rc;
    if (t->audio == AUDIO_AAC && (rc = decode_audio(t, NULL))) return rc;
    if (!t->frames) return lav_fail(t->call, EIO, "%s: no video frame could be decoded", t->in);
    return 0;
}

static int finish(struct tc *t)
{
    int rc = av_write_trailer(t->oc);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot write", t->out.final);
    rc = t->oc->pb ? avio_closep(&t->oc->pb) : 0;
    t->opened = false;
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot write", t->out.final);
    return lav_output_publish(t->call, &t->out);
}

static void tc_free(struct tc *t)
{
    if (t->oc && t->oc->pb) avio_closep(&t->oc->pb);
    avformat_free_context(t->oc);
    avformat_close_input(&t->ic);
    avcodec_free_context(&t->vdec);
    avcodec_free_context(&t->venc);
    avcodec_free_context(&t->adec);
    avcodec_free_context(&t->aenc);
    sws_freeContext(t->sws);
    swr_free(&t->swr);
    if (t->fifo) av_audio_fifo_free(t->fifo);
    av_frame_free(&t->aframe);
    av_frame_free(&t->scaled);
    av_frame_free(&t->frame);
    av_packet_free(&t->pkt);
    av_packet_free(&t->opkt);
}

static int run(struct tc *t)
{
    char out[PATH_MAX];
    int rc;
    if ((rc = lav_arg_path(t->call, "in", t->in)) || (rc = lav_arg_path(t->call, "out", out))) return rc;
    t->threads = (int)lav_arg_int(t->call, "threads", 1);
    t->pkt = av_packet_alloc();
    t->opkt = av_packet_alloc();
    t->frame = av_frame_alloc();
    if (!t->pkt || !t->opkt || !t->frame) return lav_fail(t->call, ENOMEM, "out of memory");
    if ((rc = lav_open_input(t->call, t->in, &t->ic))) return rc;
    snprintf(t->out.final, sizeof t->out.final, "%s", out);
    if ((rc = open_output(t)) || (rc = open_video(t)) || (rc = open_audio(t))) return rc;
    if ((rc = lav_output_prepare(t->call, &t->out, out))) return rc;
    if ((rc = start_writing(t)) || (rc = pump(t))) return rc;
    return finish(t);
}

int lav_transcode(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job)
{
    (void)ctx;
    struct lav_call call;
    lav_call_init(&call, "transcode", job, keys, sizeof keys / sizeof keys[0]);
    struct tc t = { .call = &call, .vi = -1, .ai = -1, .last_pts = AV_NOPTS_VALUE };
    int rc = lav_args_parse(&call, args, len);
    if (!rc) rc = run(&t);
    if (rc) {
        if (t.oc && t.oc->pb) avio_closep(&t.oc->pb);
        lav_output_discard(&t.out);
    } else {
        static const char *const modes[] = { "none", "copy", "aac" };
        const char *codec = lav_arg(&call, "codec");
        lav_json(&call, "{\"in\":");
        lav_json_str(&call, t.in);
        lav_json(&call, ",\"out\":");
        lav_json_str(&call, t.out.final);
        lav_json(&call, ",\"frames\":%lld,\"duration\":%.3f,\"bytes\":%llu,\"width\":%d,\"height\":%d,"
                 "\"codec\":\"%s\",\"audio\":\"%s\",\"audio_frames\":%lld}", (long long)t.frames,
                 t.wrote ? t.t_end - t.t_first : 0.0, (unsigned long long)lav_file_size(t.out.final), t.width,
                 t.height, codec ? codec : "h264", modes[t.audio], (long long)t.audio_frames);
    }
    tc_free(&t);
    return lav_call_end(&call, rc, out);
}
