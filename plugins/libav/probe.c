/* plugins/libav/probe.c - the probe handler: what a media file holds, as
 * JSON.
 *
 *   probe in=FILE [count=no|yes]
 *
 *   {"file":..,"format":"mov,mp4,m4a,3gp,3g2,mj2","duration":S,"size":BYTES,
 *    "bit_rate":N,"streams":[{"index":0,"type":"video","codec":"h264",
 *    "profile":"High","width":W,"height":H,"pix_fmt":"yuv420p",
 *    "frame_rate":30.000,"frames":N,"duration":S,"bit_rate":N},
 *    {"index":1,"type":"audio","codec":"aac","sample_rate":48000,
 *    "channels":2,"frames":N,...}]}
 *
 * A stream's "frames" is what the container's index says (mp4 and mkv
 * written by libav say it: no decoding), null when it says nothing; with
 * count=yes every packet is read and counted instead (no decoding either).
 * A duration unknown is null. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include "libav.h"

static const struct lav_key keys[] = {
    { "in", LAV_PATH, true, 0, 0, NULL },
    { "count", LAV_WORD, false, 0, 0, "no|yes" },
};

/* Count the packets of every stream into COUNTS (NB entries). */
static int count_packets(struct lav_call *call, AVFormatContext *ic, int64_t *counts)
{
    AVPacket *pkt = av_packet_alloc();
    if (!pkt) return lav_fail(call, ENOMEM, "out of memory");
    int rc;
    for (;;) {
        if ((rc = lav_check_cancel(call))) break;
        rc = av_read_frame(ic, pkt);
        if (rc == AVERROR_EOF) {
            rc = 0;
            break;
        }
        if (rc < 0) {
            rc = lav_fail_av(call, rc, "cannot read", ic->url);
            break;
        }
        counts[pkt->stream_index]++;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    return rc;
}

/* A duration in time base TB as seconds, or null. */
static void json_duration(struct lav_call *call, int64_t d, AVRational tb)
{
    if (d == AV_NOPTS_VALUE || d < 0) lav_json(call, "null");
    else lav_json(call, "%.3f", (double)d * av_q2d(tb));
}

static void json_stream(struct lav_call *call, const AVStream *st, const int64_t *counted)
{
    const AVCodecParameters *par = st->codecpar;
    const char *type = av_get_media_type_string(par->codec_type);
    lav_json(call, "{\"index\":%d,\"type\":", st->index);
    lav_json_str(call, type ? type : "unknown");
    lav_json(call, ",\"codec\":");
    lav_json_str(call, avcodec_get_name(par->codec_id));
    const char *profile = avcodec_profile_name(par->codec_id, par->profile);
    if (profile) {
        lav_json(call, ",\"profile\":");
        lav_json_str(call, profile);
    }
    if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
        const char *pf = av_get_pix_fmt_name(par->format);
        AVRational fr = st->avg_frame_rate.num ? st->avg_frame_rate : st->r_frame_rate;
        lav_json(call, ",\"width\":%d,\"height\":%d,\"pix_fmt\":", par->width, par->height);
        lav_json_str(call, pf);
        if (fr.num > 0 && fr.den > 0) lav_json(call, ",\"frame_rate\":%.3f", av_q2d(fr));
        else lav_json(call, ",\"frame_rate\":null");
    } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
        const char *sf = av_get_sample_fmt_name(par->format);
        lav_json(call, ",\"sample_rate\":%d,\"channels\":%d,\"sample_fmt\":", par->sample_rate,
                 par->ch_layout.nb_channels);
        lav_json_str(call, sf);
    }
    if (counted) lav_json(call, ",\"frames\":%lld", (long long)counted[st->index]);
    else if (st->nb_frames > 0) lav_json(call, ",\"frames\":%lld", (long long)st->nb_frames);
    else lav_json(call, ",\"frames\":null");
    lav_json(call, ",\"duration\":");
    json_duration(call, st->duration, st->time_base);
    lav_json(call, ",\"bit_rate\":%lld}", (long long)par->bit_rate);
}

static int probe(struct lav_call *call, char *in, AVFormatContext **icp)
{
    int rc = lav_arg_path(call, "in", in);
    if (rc || (rc = lav_open_input(call, in, icp))) return rc;
    AVFormatContext *ic = *icp;
    int64_t *counts = NULL;
    const char *count = lav_arg(call, "count");
    if (count && strcmp(count, "yes") == 0) {
        if (!(counts = av_calloc(ic->nb_streams, sizeof *counts))) return lav_fail(call, ENOMEM, "out of memory");
        if ((rc = count_packets(call, ic, counts))) {
            av_free(counts);
            return rc;
        }
    }
    lav_json(call, "{\"file\":");
    lav_json_str(call, in);
    lav_json(call, ",\"format\":");
    lav_json_str(call, ic->iformat->name);
    lav_json(call, ",\"duration\":");
    json_duration(call, ic->duration, AV_TIME_BASE_Q);
    lav_json(call, ",\"size\":%llu,\"bit_rate\":%lld,\"streams\":[", (unsigned long long)lav_file_size(in),
             (long long)ic->bit_rate);
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        if (i) lav_json(call, ",");
        json_stream(call, ic->streams[i], counts);
    }
    lav_json(call, "]}");
    av_free(counts);
    return 0;
}

int lav_probe(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job)
{
    (void)ctx;
    struct lav_call call;
    char in[PATH_MAX];
    lav_call_init(&call, "probe", job, keys, sizeof keys / sizeof keys[0]);
    AVFormatContext *ic = NULL;
    int rc = lav_args_parse(&call, args, len);
    if (!rc) rc = probe(&call, in, &ic);
    avformat_close_input(&ic);
    return lav_call_end(&call, rc, out);
}
