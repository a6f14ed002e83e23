%% beam_peer - the BEAM mechanism FLAME builds on, timed one call at a time
%% like ember-bench's warm call: this node spawns the empty function on a
%% second local node (spawn/4) and receives its reply. bench/beam runs it.
%% One JSON line per figure on stdout: rtt_p50_us, rtt_p99_us, rtt_p99_9_us
%% and the CDF (rtt_cdf_us, "p"), system "beam".
-module(beam_peer).
-export([main/1, reply/1]).

reply(Parent) -> Parent ! {self(), ok}.

call(Node) ->
    T0 = erlang:monotonic_time(nanosecond),
    Pid = spawn(Node, ?MODULE, reply, [self()]),
    receive {Pid, ok} -> ok after 10000 -> exit(no_reply) end,
    erlang:monotonic_time(nanosecond) - T0.

wait_for(Node, 0) -> io:format(standard_error, "beam_peer: ~p does not answer~n", [Node]), halt(1);
wait_for(Node, K) ->
    case net_adm:ping(Node) of
        pong -> ok;
        pang -> timer:sleep(100), wait_for(Node, K - 1)
    end.

main([NodeS, NS, Pinned]) ->
    Node = list_to_atom(NodeS),
    N = list_to_integer(NS),
    wait_for(Node, 100),
    [call(Node) || _ <- lists:seq(1, 1000)],
    V = list_to_tuple(lists:sort([call(Node) || _ <- lists:seq(1, N)])),
    Q = fun(P) -> element(1 + trunc(P * (N - 1)), V) / 1000 end,
    Line = fun(Metric, Value, Extra) ->
        io:format("{\"metric\":\"~s\",\"value\":~.3f,\"unit\":\"us\",\"system\":\"beam\"~s,"
                  "\"pinned_apart\":~s}~n", [Metric, float(Value), Extra, Pinned])
    end,
    [Line(M, Q(P), "") || {M, P} <- [{"rtt_p50_us", 0.5}, {"rtt_p99_us", 0.99}, {"rtt_p99_9_us", 0.999}]],
    Ps = [0.01 + 0.02 * K || K <- lists:seq(0, 49)] ++ [0.995, 0.999, 0.9995, 0.9999],
    [Line("rtt_cdf_us", Q(P), io_lib:format(",\"p\":~.4f", [P])) || P <- Ps],
    spawn(Node, erlang, halt, []),
    halt(0).
