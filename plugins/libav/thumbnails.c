/* plugins/libav/thumbnails.c - the thumbnails handler: a picture of a video
 * every so many seconds, into a folder (FLAME's generate_thumbnails).
 *
 *   thumbnails in=FILE out=FOLDER every=SECONDS [format=png|jpg] [height=N]
 *              [width=N] [threads=N]
 *
 * Picture k (named 0001.png, 0002.png... like ffmpeg's %04d) is the frame
 * on screen at time k x every from the video's first frame, for every such
 * time before the video's end: a 4 s clip with every=1 gives 4 pictures
 * (0, 1, 2 and 3 s). height= or width= alone keeps the proportions; neither
 * keeps the video's size. The folder is made if missing; the pictures are
 * written into a temporary folder and appear together at the end (the
 * temporary renamed to FOLDER when FOLDER did not exist, else each picture
 * renamed into it), so a failed or cancelled call leaves none of its
 * pictures. The result:
 *   {"in":..,"out":..,"frames":N,"duration":S,"bytes":N,"width":W,
 *    "height":H,"format":"png","decoded":N}
 * ("frames": the pictures written; "duration": the video's, as decoded;
 * "bytes": the pictures' total size). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include "libav.h"

static const struct lav_key keys[] = {
    { "in", LAV_PATH, true, 0, 0, NULL },
    { "out", LAV_PATH, true, 0, 0, NULL },
    { "every", LAV_NUM, true, 0, 86400, NULL },
    { "format", LAV_WORD, false, 0, 0, "png|jpg" },
    { "height", LAV_INT, false, 1, 16384, NULL },
    { "width", LAV_INT, false, 1, 16384, NULL },
    { "threads", LAV_INT, false, 1, 64, NULL },
};

struct th {
    struct lav_call *call;
    char in[PATH_MAX];
    struct lav_output out;
    bool jpg;
    double every;
    AVFormatContext *ic;
    int vi;
    AVCodecContext *dec, *enc;
    struct SwsContext *sws;
    AVPacket *pkt;
    AVFrame *frame, *prev, *pic;
    bool have_prev;
    double origin, prev_t, end;      /* seconds: the first frame's time, prev's, the video's end */
    bool started;
    int64_t next;                    /* the next picture's number k (from 0) */
    int64_t decoded;
    uint64_t bytes;
    int width, height;
};

/* The picture encoder and the scaler, for frames like F. */
static int open_encoder(struct th *t, const AVFrame *f)
{
    long h = lav_arg_int(t->call, "height", 0), w = lav_arg_int(t->call, "width", 0);
    if (!h && !w) w = f->width, h = f->height;
    if (!w) w = FFMAX(1, av_rescale(h, f->width, f->height));
    if (!h) h = FFMAX(1, av_rescale(w, f->height, f->width));
    t->width = (int)w, t->height = (int)h;
    const AVCodec *codec = avcodec_find_encoder(t->jpg ? AV_CODEC_ID_MJPEG : AV_CODEC_ID_PNG);
    if (!codec) return lav_fail(t->call, EINVAL, "format=%s: this FFmpeg has no encoder for it", t->jpg ? "jpg" : "png");
    if (!(t->enc = avcodec_alloc_context3(codec)) || !(t->pic = av_frame_alloc()))
        return lav_fail(t->call, ENOMEM, "out of memory");
    AVCodecContext *e = t->enc;
    e->width = t->width;
    e->height = t->height;
    e->pix_fmt = t->jpg ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_RGB24;
    e->time_base = (AVRational){ 1, 25 };
    e->thread_count = 1; /* 0 would be one per CPU, for each picture */
    if (t->jpg) {
        e->flags |= AV_CODEC_FLAG_QSCALE;
        e->global_quality = FF_QP2LAMBDA * 3; /* ffmpeg -q:v 3: good pictures, small files */
    }
    int rc = avcodec_open2(e, codec, NULL);
    if (rc < 0) return lav_fail_av(t->call, rc, "cannot open the encoder", codec->name);
    t->pic->format = e->pix_fmt;
    t->pic->width = e->width;
    t->pic->height = e->height;
    rc = av_frame_get_buffer(t->pic, 0);
    return rc < 0 ? lav_fail_av(t->call, rc, "cannot get a frame for", t->out.final) : 0;
}

/* N bytes at P to FD (the file NAME): 0 or an errno (message set). */
static int write_all(struct lav_call *call, int fd, const char *name, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return lav_fail(call, errno, "cannot write %s: %s", name, strerror(errno));
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* Write picture number t->next + 1 from decoded frame F. */
static int write_picture(struct th *t, const AVFrame *f)
{
    int rc;
    if (!t->enc && (rc = open_encoder(t, f))) return rc;
    t->sws = sws_getCachedContext(t->sws, f->width, f->height, f->format, t->width, t->height, t->enc->pix_fmt,
                                  SWS_BICUBIC, NULL, NULL, NULL);
    if (!t->sws)
        return lav_fail(t->call, EIO, "cannot scale %dx%d %s to %dx%d", f->width, f->height,
                        av_get_pix_fmt_name(f->format), t->width, t->height);
    if ((rc = av_frame_make_writable(t->pic)) < 0) return lav_fail_av(t->call, rc, "cannot get a frame for", t->out.final);
    sws_scale(t->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, t->pic->data, t->pic->linesize);
    t->pic->pts = t->next;
    if ((rc = avcodec_send_frame(t->enc, t->pic)) < 0)
        return lav_fail_av(t->call, rc, "cannot encode a picture for", t->out.final);
    char name[PATH_MAX];
    if (snprintf(name, sizeof name, "%s/%04lld.%s", t->out.tmp, (long long)t->next + 1, t->jpg ? "jpg" : "png") >=
        (int)sizeof name)
        return lav_fail(t->call, ENAMETOOLONG, "the output name %s is too long", t->out.final);
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return lav_fail(t->call, errno, "cannot create %s: %s", name, strerror(errno));
    AVPacket *p = t->pkt;
    int err = 0;
    while (!err) {
        rc = avcodec_receive_packet(t->enc, p);
        if (rc == AVERROR(EAGAIN)) break; /* the picture is out */
        if (rc < 0) {
            err = lav_fail_av(t->call, rc, "cannot encode a picture for", t->out.final);
            break;
        }
        err = write_all(t->call, fd, name, p->data, (size_t)p->size);
        t->bytes += (uint64_t)p->size;
        av_packet_unref(p);
    }
    if (close(fd) < 0 && !err) err = lav_fail(t->call, errno, "cannot write %s: %s", name, strerror(errno));
    if (!err) t->next++;
    return err;
}

/* Seconds of frame F from the first frame (its best guess of a time). */
static double frame_time(struct th *t, const AVFrame *f)
{
    AVRational tb = t->ic->streams[t->vi]->time_base;
    int64_t ts = f->best_effort_timestamp;
    double s = ts == AV_NOPTS_VALUE ? (t->started ? t->prev_t + 1e-3 : 0) : (double)ts * av_q2d(tb);
    if (!t->started) {
        t->origin = s;
        t->started = true;
    }
    return s - t->origin;
}

/* A decoded frame F at time S: the pictures due before it are of the
 * previous frame (on screen until S); F becomes the previous frame. */
static int take_frame(struct th *t, AVFrame *f)
{
    double s = frame_time(t, f);
    const double eps = 1e-6;
    int rc;
    while (t->have_prev && t->next * t->every < s - eps)
        if ((rc = write_picture(t, t->prev)) || (rc = lav_check_cancel(t->call))) return rc;
    av_frame_unref(t->prev);
    av_frame_move_ref(t->prev, f);
    t->have_prev = true;
    t->prev_t = s;
    /* its duration, for the video's end (the frame's own, else the rate's) */
    double d = (double)t->prev->pkt_duration * av_q2d(t->ic->streams[t->vi]->time_base);
    if (d <= 0) {
        AVRational fr = av_guess_frame_rate(t->ic, t->ic->streams[t->vi], NULL);
        d = fr.num > 0 && fr.den > 0 ? 1 / av_q2d(fr) : 0;
    }
    if (s + d > t->end) t->end = s + d;
    return 0;
}

/* Frames that no picture will show need not be decoded: a frame whose own
 * time is more than a few frame durations before the next picture's is
 * followed by others before that time. The decoder is told to skip such a
 * packet when no other frame refers to it (AVDISCARD_NONREF: what is
 * decoded stays exact); the frames near each picture's time, and every
 * frame until the first one's time is known, are decoded. */
static void skip_unseen(struct th *t, const AVPacket *pkt)
{
    enum AVDiscard skip = AVDISCARD_DEFAULT;
    if (pkt && t->started && pkt->pts != AV_NOPTS_VALUE) {
        AVStream *st = t->ic->streams[t->vi];
        AVRational fr = av_guess_frame_rate(t->ic, st, NULL);
        double d = fr.num > 0 && fr.den > 0 ? 1 / av_q2d(fr) : 0.1;
        double s = (double)pkt->pts * av_q2d(st->time_base) - t->origin;
        if (s < (double)t->next * t->every - 4 * d) skip = AVDISCARD_NONREF;
    }
    t->dec->skip_frame = skip;
}

/* PKT (NULL: drain) through the decoder. */
static int decode(struct th *t, const AVPacket *pkt)
{
    skip_unseen(t, pkt);
    int rc = avcodec_send_packet(t->dec, pkt);
    if (rc < 0 && rc != AVERROR_EOF) return lav_fail_av(t->call, rc, "cannot decode the video of", t->in);
    for (;;) {
        rc = avcodec_receive_frame(t->dec, t->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return lav_fail_av(t->call, rc, "cannot decode the video of", t->in);
        t->decoded++;
        if ((rc = take_frame(t, t->frame)) || (rc = lav_check_cancel(t->call))) return rc;
    }
}

static int pump(struct th *t)
{
    int rc;
    for (;;) {
        if ((rc = lav_check_cancel(t->call))) return rc;
        rc = av_read_frame(t->ic, t->pkt);
        if (rc == AVERROR_EOF) break;
        if (rc < 0) return lav_fail_av(t->call, rc, "cannot read", t->in);
        rc = t->pkt->stream_index == t->vi ? decode(t, t->pkt) : 0;
        av_packet_unref(t->pkt);
        if (rc) return rc;
    }
    if ((rc = decode(t, NULL))) return rc;
    if (!t->have_prev) return lav_fail(t->call, EIO, "%s: no video frame could be decoded", t->in);
    /* the last frame is on screen until the end */
    while (t->next * t->every < t->end - 1e-6 || t->next == 0)
        if ((rc = write_picture(t, t->prev)) || (rc = lav_check_cancel(t->call))) return rc;
    return 0;
}

static int run(struct th *t)
{
    char out[PATH_MAX];
    int rc;
    if ((rc = lav_arg_path(t->call, "in", t->in)) || (rc = lav_arg_path(t->call, "out", out))) return rc;
    const char *fmt = lav_arg(t->call, "format");
    t->jpg = fmt && strcmp(fmt, "jpg") == 0;
    t->every = lav_arg_num(t->call, "every", 1);
    t->pkt = av_packet_alloc();
    t->frame = av_frame_alloc();
    t->prev = av_frame_alloc();
    if (!t->pkt || !t->frame || !t->prev) return lav_fail(t->call, ENOMEM, "out of memory");
    if ((rc = lav_open_input(t->call, t->in, &t->ic))) return rc;
    t->vi = av_find_best_stream(t->ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (t->vi < 0) return lav_fail(t->call, EIO, "%s has no video stream", t->in);
    /* only the video's packets are wanted */
    for (unsigned i = 0; i < t->ic->nb_streams; i++)
        if ((int)i != t->vi) t->ic->streams[i]->discard = AVDISCARD_ALL;
    if ((rc = lav_open_decoder(t->call, t->ic, t->vi, (int)lav_arg_int(t->call, "threads", 1), &t->dec))) return rc;
    if ((rc = lav_output_prepare_dir(t->call, &t->out, out))) return rc;
    if ((rc = pump(t))) return rc;
    return lav_output_publish(t->call, &t->out);
}

int lav_thumbnails(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job)
{
    (void)ctx;
    struct lav_call call;
    lav_call_init(&call, "thumbnails", job, keys, sizeof keys / sizeof keys[0]);
    struct th t = { .call = &call, .vi = -1 };
    int rc = lav_args_parse(&call, args, len);
    if (!rc) rc = run(&t);
    if (rc) {
        lav_output_discard(&t.out);
    } else {
        lav_json(&call, "{\"in\":");
        lav_json_str(&call, t.in);
        lav_json(&call, ",\"out\":");
        lav_json_str(&call, t.out.final);
        lav_json(&call, ",\"frames\":%lld,\"duration\":%.3f,\"bytes\":%llu,\"width\":%d,\"height\":%d,"
                 "\"format\":\"%s\",\"decoded\":%lld}", (long long)t.next, t.end, (unsigned long long)t.bytes,
                 t.width, t.height, t.jpg ? "jpg" : "png", (long long)t.decoded);
    }
    avformat_close_input(&t.ic);
    avcodec_free_context(&t.dec);
    avcodec_free_context(&t.enc);
    sws_freeContext(t.sws);
    av_frame_free(&t.frame);
    av_frame_free(&t.prev);
    av_frame_free(&t.pic);
    av_packet_free(&t.pkt);
    return lav_call_end(&call, rc, out);
}
