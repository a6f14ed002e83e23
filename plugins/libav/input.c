/* plugins/libav/input.c - opening a media file and a decoder for one of
 * its streams, as every handler of the plugin does. */
#include <errno.h>
#include <stdio.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include "libav.h"

int lav_open_input(struct lav_call *call, const char *path, AVFormatContext **ic)
{
    *ic = NULL;
    int rc = avformat_open_input(ic, path, NULL, NULL);
    if (rc < 0) return lav_fail_av(call, rc, "cannot open", path);
    rc = avformat_find_stream_info(*ic, NULL);
    if (rc < 0) {
        avformat_close_input(ic);
        return lav_fail_av(call, rc, "cannot read the streams of", path);
    }
    return 0;
}

int lav_open_decoder(struct lav_call *call, AVFormatContext *ic, int index, int threads, AVCodecContext **dec)
{
    AVStream *st = ic->streams[index];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    *dec = NULL;
    if (!codec)
        return lav_fail(call, EIO, "%s: stream %d: no decoder for its codec %s", ic->url, index,
                        avcodec_get_name(st->codecpar->codec_id));
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c) return lav_fail(call, ENOMEM, "out of memory");
    int rc = avcodec_parameters_to_context(c, st->codecpar);
    if (rc >= 0) {
        /* the packets' time base, or the decoder guesses timestamps wrong */
        c->pkt_timebase = st->time_base;
        c->thread_count = threads; /* 0 would be one thread per CPU */
        rc = avcodec_open2(c, codec, NULL);
    }
    if (rc < 0) {
        avcodec_free_context(&c);
        char what[64];
        snprintf(what, sizeof what, "cannot open the %s decoder of", codec->name);
        return lav_fail_av(call, rc, what, ic->url);
    }
    *dec = c;
    return 0;
}
