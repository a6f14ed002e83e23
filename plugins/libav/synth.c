/* plugins/libav/synth.c - the synth handler: a synthetic clip (a moving
 * picture and a tone), made with libav alone, for tests and demos that
 * need sample videos without a download or an ffmpeg binary.
 *
 *   synth out=FILE [seconds=2] [width=320] [height=240] [fps=30] [tone=440]
 *         [preset=veryfast]
 *
 * The picture is a diagonal gradient sliding one way and a bright square
 * crossing the other, its colours turning with time (every frame differs,
 * as in a real video); the sound a sine of tone= Hz at 48 kHz stereo
 * (tone=0: no audio). H.264 (libx264, one thread) and AAC, in the container
 * out='s extension names. The result is transcode's:
 *   {"out":..,"frames":N,"duration":S,"bytes":N,"width":W,"height":H,"audio_frames":N} */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include "libav.h"

static const struct lav_key keys[] = {
    { "out", LAV_PATH, true, 0, 0, NULL },
    { "seconds", LAV_NUM, false, 0, 3600, NULL },
    { "width", LAV_INT, false, 16, 7680, NULL },
    { "height", LAV_INT, false, 16, 4320, NULL },
    { "fps", LAV_INT, false, 1, 240, NULL },
    { "tone", LAV_INT, false, 0, 20000, NULL },
    { "preset", LAV_TEXT, false, 0, 0, NULL },
};

#define SYNTH_RATE 48000

struct synth {
    struct lav_call *call;
    struct lav_output out;
    AVFormatContext *oc;
    AVCodecContext *venc, *aenc;
    AVStream *vost, *aost;
    AVFrame *vf, *af;
    AVPacket *pkt;
    int width, height, fps, tone;
    int64_t frames, nframes, samples, audio_frames;
};

static int drain(struct synth *s, AVCodecContext *enc, AVStream *ost)
{
    for (;;) {
        int rc = avcodec_receive_packet(enc, s->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return lav_fail_av(s->call, rc, "encoding failed for", s->out.final);
        av_packet_rescale_ts(s->pkt, enc->time_base, ost->time_base); /* what the muxer left */
        s->pkt->stream_index = ost->index;
        rc = av_interleaved_write_frame(s->oc, s->pkt);
        if (rc < 0) return lav_fail_av(s->call, rc, "cannot write", s->out.final);
    }
}

/* Frame N of the picture into s->vf (YUV 4:2:0). */
static void paint(struct synth *s, int64_t n)
{
    AVFrame *f = s->vf;
    int w = s->width, h = s->height, sq = h / 4;
    int sx = (int)((n * 4) % (w + sq)) - sq, sy = h / 2 - sq / 2 + (int)(sin((double)n / 10) * h / 4);
    for (int y = 0; y < h; y++) {
        uint8_t *row = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        for (int x = 0; x < w; x++) {
            bool in_sq = x >= sx && x < sx + sq && y >= sy && y < sy + sq;
            row[x] = in_sq ? 235 : (uint8_t)(16 + ((x + y + n * 3) % 200));
        }
    }
    /* colour: U waves along x, V along y, both drifting with n */
    uint8_t ucol[4096];
    for (int x = 0; x < w / 2 && x < (int)sizeof ucol; x++) ucol[x] = (uint8_t)(128 + 60 * sin((double)(x + n) / 23));
    for (int y = 0; y < h / 2; y++) {
        uint8_t *u = f->data[1] + (ptrdiff_t)y * f->linesize[1], *v = f->data[2] + (ptrdiff_t)y * f->linesize[2];
        uint8_t vrow = (uint8_t)(128 + 60 * cos((double)(y * 2 + n) / 31));
        memcpy(u, ucol, (size_t)(w / 2));
        memset(v, vrow, (size_t)(w / 2));
    }
}

/* Audio up to video frame N's end, whole AAC frames. */
static int sound_until(struct synth *s, int64_t n, bool last)
{
    int64_t want = last ? av_rescale(s->nframes, SYNTH_RATE, s->fps) : av_rescale(n + 1, SYNTH_RATE, s->fps);
    int fs = s->aenc->frame_size;
    while (s->samples < want) {
        int rc = av_frame_make_writable(s->af);
        if (rc < 0) return lav_fail_av(s->call, rc, "cannot get a frame for", s->out.final);
        int k = (int)FFMIN(fs, want - s->samples);
        if (!last && k < fs) break;
        s->af->nb_samples = k;
        for (int c = 0; c < s->aenc->ch_layout.nb_channels; c++) {
            float *p = (float *)s->af->data[c];
            for (int i = 0; i < k; i++)
                p[i] = 0.3f * (float)sin(2 * M_PI * s->tone * (double)(s->samples + i) / SYNTH_RATE);
        }
        s->af->pts = s->samples;
        s->samples += k;
        if ((rc = avcodec_send_frame(s->aenc, s->af)) < 0)
            return lav_fail_av(s->call, rc, "audio encoding failed for", s->out.final);
        s->audio_frames++;
        if ((rc = drain(s, s->aenc, s->aost))) return rc;
    }
    return 0;
}

static int open_video(struct synth *s)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!codec) return lav_fail(s->call, EINVAL, "this FFmpeg has neither libx264 nor an MPEG-4 encoder");
    AVCodecContext *e = s->venc = avcodec_alloc_context3(codec);
    if (!e) return lav_fail(s->call, ENOMEM, "out of memory");
    e->width = s->width;
    e->height = s->height;
    e->pix_fmt = AV_PIX_FMT_YUV420P;
    e->time_base = (AVRational){ 1, s->fps };
    e->framerate = (AVRational){ s->fps, 1 };
    e->gop_size = s->fps * 2;
    e->thread_count = 1;
    if (s->oc->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    const char *preset = lav_arg(s->call, "preset");
    if (strcmp(codec->name, "libx264") == 0 && av_opt_set(e->priv_data, "preset", preset ? preset : "veryfast", 0) < 0)
        return lav_fail(s->call, EINVAL, "preset=%s: refused by libx264", preset);
    int rc = avcodec_open2(e, codec, NULL);
    if (rc < 0) return lav_fail_av(s->call, rc, "cannot open the encoder", codec->name);
    if (!(s->vost = avformat_new_stream(s->oc, NULL)) || !(s->vf = av_frame_alloc()))
        return lav_fail(s->call, ENOMEM, "out of memory");
    if ((rc = avcodec_parameters_from_context(s->vost->codecpar, e)) < 0)
        return lav_fail_av(s->call, rc, "cannot set up the video of", s->out.final);
    s->vost->time_base = e->time_base;
    s->vost->avg_frame_rate = e->framerate;
    s->vf->format = e->pix_fmt;
    s->vf->width = e->width;
    s->vf->height = e->height;
    rc = av_frame_get_buffer(s->vf, 0);
    return rc < 0 ? lav_fail(s->call, ENOMEM, "out of memory") : 0;
}

static int open_audio(struct synth *s)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!codec) return lav_fail(s->call, EINVAL, "this FFmpeg has no AAC encoder (tone=0: no audio)");
    AVCodecContext *e = s->aenc = avcodec_alloc_context3(codec);
    if (!e) return lav_fail(s->call, ENOMEM, "out of memory");
    e->sample_fmt = AV_SAMPLE_FMT_FLTP;
    e->sample_rate = SYNTH_RATE;
    av_channel_layout_default(&e->ch_layout, 2);
    e->bit_rate = 128000;
    e->time_base = (AVRational){ 1, SYNTH_RATE };
    e->thread_count = 1;
    if (s->oc->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(e, codec, NULL);
    if (rc < 0) return lav_fail_av(s->call, rc, "cannot open the encoder", codec->name);
    if (!(s->aost = avformat_new_stream(s->oc, NULL)) || !(s->af = av_frame_alloc()))
        return lav_fail(s->call, ENOMEM, "out of memory");
    if ((rc = avcodec_parameters_from_context(s->aost->codecpar, e)) < 0)
        return lav_fail_av(s->call, rc, "cannot set up the audio of", s->out.final);
    s->aost->time_base = e->time_base;
    s->af->format = e->sample_fmt;
    s->af->nb_samples = e->frame_size;
    s->af->sample_rate = e->sample_rate;
    if (av_channel_layout_copy(&s->af->ch_layout, &e->ch_layout) < 0 || av_frame_get_buffer(s->af, 0) < 0)
        return lav_fail(s->call, ENOMEM, "out of memory");
    return 0;
}

static int run(struct synth *s)
{
    char out[PATH_MAX];
    int rc = lav_arg_path(s->call, "out", out);
    if (rc) return rc;
    s->width = (int)lav_arg_int(s->call, "width", 320);
    s->height = (int)lav_arg_int(s->call, "height", 240);
    s->fps = (int)lav_arg_int(s->call, "fps", 30);
    s->tone = (int)lav_arg_int(s->call, "tone", 440);
    if ((s->width | s->height) & 1)
        return lav_fail(s->call, EINVAL, "width=%d height=%d: both must be even", s->width, s->height);
    s->nframes = FFMAX(1, llrint(lav_arg_num(s->call, "seconds", 2) * s->fps));
    if (!(s->pkt = av_packet_alloc())) return lav_fail(s->call, ENOMEM, "out of memory");
    if (avformat_alloc_output_context2(&s->oc, NULL, NULL, out) < 0 || !s->oc)
        return lav_fail(s->call, EINVAL, "out=%s: no container for that name (give it an extension such as "
                        ".mp4 or .mkv)", lav_arg(s->call, "out"));
    if ((rc = open_video(s)) || (s->tone && (rc = open_audio(s)))) return rc;
    if ((rc = lav_output_prepare(s->call, &s->out, out))) return rc;
    if (!(s->oc->oformat->flags & AVFMT_NOFILE) && (rc = avio_open(&s->oc->pb, s->out.tmp, AVIO_FLAG_WRITE)) < 0)
        return lav_fail_av(s->call, rc, "cannot create", s->out.tmp);
    if ((rc = avformat_write_header(s->oc, NULL)) < 0) return lav_fail_av(s->call, rc, "cannot write", out);
    for (int64_t n = 0; n < s->nframes; n++) {
        if ((rc = lav_check_cancel(s->call))) return rc;
        if ((rc = av_frame_make_writable(s->vf)) < 0) return lav_fail_av(s->call, rc, "cannot get a frame for", out);
        paint(s, n);
        s->vf->pts = n;
        if ((rc = avcodec_send_frame(s->venc, s->vf)) < 0) return lav_fail_av(s->call, rc, "encoding failed for", out);
        s->frames++;
        if ((rc = drain(s, s->venc, s->vost)) || (s->aenc && (rc = sound_until(s, n, false)))) return rc;
    }
    if ((rc = avcodec_send_frame(s->venc, NULL)) < 0) return lav_fail_av(s->call, rc, "encoding failed for", out);
    if ((rc = drain(s, s->venc, s->vost))) return rc;
    if (s->aenc) {
        if ((rc = sound_until(s, s->nframes, true))) return rc;
        if ((rc = avcodec_send_frame(s->aenc, NULL)) < 0) return lav_fail_av(s->call, rc, "encoding failed for", out);
        if ((rc = drain(s, s->aenc, s->aost))) return rc;
    }
    if ((rc = av_write_trailer(s->oc)) < 0) return lav_fail_av(s->call, rc, "cannot write", out);
    if (s->oc->pb && (rc = avio_closep(&s->oc->pb)) < 0) return lav_fail_av(s->call, rc, "cannot write", out);
    return lav_output_publish(s->call, &s->out);
}

int lav_synth(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job)
{
    (void)ctx;
    struct lav_call call;
    lav_call_init(&call, "synth", job, keys, sizeof keys / sizeof keys[0]);
    struct synth s = { .call = &call };
    int rc = lav_args_parse(&call, args, len);
    if (!rc) rc = run(&s);
    if (s.oc && s.oc->pb) avio_closep(&s.oc->pb);
    if (rc) {
        lav_output_discard(&s.out);
    } else {
        lav_json(&call, "{\"out\":");
        lav_json_str(&call, s.out.final);
        lav_json(&call, ",\"frames\":%lld,\"duration\":%.3f,\"bytes\":%llu,\"width\":%d,\"height\":%d,"
                 "\"audio_frames\":%lld}", (long long)s.frames, (double)s.frames / s.fps,
                 (unsigned long long)lav_file_size(s.out.final), s.width, s.height, (long long)s.audio_frames);
    }
    avformat_free_context(s.oc);
    avcodec_free_context(&s.venc);
    avcodec_free_context(&s.aenc);
    av_frame_free(&s.vf);
    av_frame_free(&s.af);
    av_packet_free(&s.pkt);
    return lav_call_end(&call, rc, out);
}
