// This project's additions to node-llama-cpp's binding, compiled into it by scripts/llama_native.ts
// (registered from the patched addon.cpp). They use node-llama-cpp's own classes (AddonContext,
// AddonSampler) so that a sequence's KV cells and a request's sampler are the ones its JS side knows.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "napi.h"
#include "llama.h"
#include "AddonContext.h"
#include "AddonSampler.h"

// The binding's exports, to tell node-llama-cpp's classes apart before unwrapping an argument.
static Napi::ObjectReference addonExports;

// Whether `value` is an instance of the binding's class `name` (unwrapping anything else is undefined).
static bool isInstance(const Napi::Value& value, const char* name) {
    if (!value.IsObject() || addonExports.IsEmpty()) return false;
    const Napi::Value constructor = addonExports.Value().Get(name);
    return constructor.IsFunction() && value.As<Napi::Object>().InstanceOf(constructor.As<Napi::Function>());
}

static Napi::Value tabagentCopySequencePrefix(const Napi::CallbackInfo& info) {
    if (info.Length() < 4 || !isInstance(info[0], "AddonContext") || !info[1].IsNumber() || !info[2].IsNumber() ||
        !info[3].IsNumber()) {
        Napi::TypeError::New(info.Env(), "tabagentCopySequencePrefix: expected (context, from, to, keep)")
            .ThrowAsJavaScriptException();
        return info.Env().Undefined();
    }
    AddonContext* context = Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>());
    if (context == nullptr || context->ctx == nullptr) {
        Napi::Error::New(info.Env(), "Context is disposed").ThrowAsJavaScriptException();
        return info.Env().Undefined();
    }
    const int32_t from = info[1].As<Napi::Number>().Int32Value();
    const int32_t to = info[2].As<Napi::Number>().Int32Value();
    const int32_t keep = info[3].As<Napi::Number>().Int32Value();
    llama_memory_t memory = llama_get_memory(context->ctx);
    if (from == to || keep < 0 || !llama_memory_seq_rm(memory, to, -1, -1)) return Napi::Boolean::New(info.Env(), false);
    llama_memory_seq_cp(memory, from, to, -1, -1);
    const bool copied = llama_memory_seq_rm(memory, to, keep, -1) && llama_memory_seq_pos_max(memory, to) == keep - 1;
    if (!copied) llama_memory_seq_rm(memory, to, -1, -1); // empty, as the caller's books say
    return Napi::Boolean::New(info.Env(), copied);
}

// Why a job of tabagentDecodeSteps stopped (its first result field).
enum JobEnd : int32_t {
    JOB_RUNNING = 0,  // the run was paused (control[0]); the job goes on in the next run
    JOB_EOG = 1,      // sampled an end-of-generation token (not decoded)
    JOB_LENGTH = 2,   // sampled its last allowed token (not decoded)
    JOB_STOPPED = 3,  // its stop flag was set (its last sampled token is not decoded)
    JOB_FAILED = 4,   // the sampler gave no token
};

// A sampler that only takes the most likely token (temperature 0, nothing before it in the chain).
static bool plainGreedy(const AddonSampler* sampler) {
    return sampler->greedySampler != nullptr && sampler->xtcSampler == nullptr && sampler->tokenBiasSampler == nullptr &&
        sampler->repeatPenaltySampler == nullptr && sampler->dryRepeatPenaltySampler == nullptr &&
        sampler->grammarEvaluationState == nullptr;
}

// The token llama.cpp's greedy sampler picks (the first of the highest logits), without building the
// candidate list of the whole vocabulary first; -1 where the logits are not plain ones.
static llama_token greedyToken(llama_context* ctx, int32_t row, int32_t vocabSize) {
    if (llama_get_sampled_probs_ith(ctx, row) != nullptr || llama_get_sampled_logits_ith(ctx, row) != nullptr) return -1;
    const float* logits = llama_get_logits_ith(ctx, row);
    if (logits == nullptr || vocabSize <= 0) return -1;
    int32_t best = 0;
    for (int32_t token = 1; token < vocabSize; token++) {
        if (logits[token] > logits[best]) best = token;
    }
    return best;
}

// tabagentDecodeSteps's arguments, read and checked once (readDecodeStepsArguments).
struct DecodeStepsArguments {
    Napi::Int32Array sequences;
    Napi::Int32Array positions;
    Napi::Uint32Array inputs;
    Napi::Int32Array offsets;
    Napi::Array samplers;
    Napi::Int32Array maxNew;
    Napi::Function onStep;
    Napi::Int32Array control;
};

struct DecodeJob {
    int32_t sequence;
    int32_t position;             // of the next token decoded
    std::vector<llama_token> input;  // what is decoded next: the prompt's rest, then each sampled token
    size_t consumed = 0;          // of input, already decoded
    AddonSampler* sampler;
    int32_t maxNew;               // tokens this run may still sample
    int32_t end = JOB_RUNNING;
    int32_t decoded = 0;          // tokens decoded into the sequence in this run
    std::vector<llama_token> sampled;
};

/**
 * Decodes and samples for several sequences of one context in a loop on a worker thread: each step
 * is one llama_decode over every running job (a prompt's rest in chunks, or the token each one sampled
 * last) and one sample per job whose input is all in. No JS runs between steps; the sampled tokens
 * reach JS through the progress callback, once per step. The run ends when no job runs, or at the
 * start of a step once JS sets control[0] (a request joins, another user of the context waits); a
 * job's own stop flag control[2 + i] (a stop string, a cancel) ends that job. Each step runs on
 * control[1] threads, which JS may change meanwhile.
 */
class TabagentDecodeWorker : public Napi::AsyncProgressQueueWorker<int32_t> {
  public:
    TabagentDecodeWorker(const Napi::Env& env, const DecodeStepsArguments& args, AddonContext* context)
        : Napi::AsyncProgressQueueWorker<int32_t>(args.onStep, "TabagentDecodeWorker"),
          context(context),
          deferred(Napi::Promise::Deferred::New(env)) {
        context->Ref();
        controlRef = Napi::Persistent(args.control);
        controlFlags = args.control.Data();
        for (size_t i = 0; i < args.sequences.ElementLength(); i++) {
            DecodeJob job;
            job.sequence = args.sequences[i];
            job.position = args.positions[i];
            for (int32_t t = args.offsets[i]; t < args.offsets[i + 1]; t++) {
                job.input.push_back(static_cast<llama_token>(args.inputs[t]));
            }
            job.sampler = Napi::ObjectWrap<AddonSampler>::Unwrap(args.samplers.Get(i).As<Napi::Object>());
            job.sampler->Ref();
            job.maxNew = args.maxNew[i];
            jobs.push_back(std::move(job));
        }
    }
    ~TabagentDecodeWorker() {
        for (auto& job : jobs) job.sampler->Unref();
        context->Unref();
    }

    Napi::Promise GetPromise() { return deferred.Promise(); }

  protected:
    void Execute(const ExecutionProgress& progress) override {
        llama_context* ctx = context->ctx;
        if (ctx == nullptr) {
            SetError("Context is disposed");
            return;
        }
        const int32_t batchSize = static_cast<int32_t>(llama_n_batch(ctx));
        llama_batch batch = llama_batch_init(batchSize, 0, 1);
        const llama_vocab* vocab = llama_model_get_vocab(llama_get_model(ctx));
        const int32_t vocabSize = llama_vocab_n_tokens(vocab);
        int32_t threads = 0;
        std::vector<int32_t> logitRow(jobs.size());
        std::vector<int32_t> stepTokens;
        try {
            while (true) {
                if (flag(0)) break;
                // The thread policy can change while a reply generates (other work comes and goes).
                const int32_t wanted = __atomic_load_n(controlFlags + 1, __ATOMIC_ACQUIRE);
                if (wanted > 0 && wanted != threads) {
                    threads = wanted;
                    llama_set_n_threads(ctx, threads, threads);
                }
                bool running = false;
                for (size_t i = 0; i < jobs.size(); i++) {
                    if (jobs[i].end == JOB_RUNNING && flag(2 + i)) jobs[i].end = JOB_STOPPED;
                    running |= jobs[i].end == JOB_RUNNING;
                }
                if (!running) break;
                batch.n_tokens = 0;
                for (size_t i = 0; i < jobs.size(); i++) {
                    DecodeJob& job = jobs[i];
                    logitRow[i] = -1;
                    if (job.end != JOB_RUNNING) continue;
                    while (job.consumed < job.input.size() && batch.n_tokens < batchSize) {
                        const bool last = job.consumed + 1 == job.input.size();
                        const int32_t row = batch.n_tokens;
                        batch.token[row] = job.input[job.consumed];
                        batch.pos[row] = job.position++;
                        batch.n_seq_id[row] = 1;
                        batch.seq_id[row][0] = job.sequence;
                        batch.logits[row] = last;
                        batch.n_tokens++;
                        job.consumed++;
                        job.decoded++;
                        if (last) logitRow[i] = row;
                    }
                }
                const int32_t status = llama_decode(ctx, batch);
                if (status != 0) {
                    SetError(status == 1 ? "could not find a KV slot for the batch" : "Eval has failed");
                    break;
                }
                stepTokens.clear();
                for (size_t i = 0; i < jobs.size(); i++) {
                    if (logitRow[i] < 0) continue;
                    DecodeJob& job = jobs[i];
                    llama_token token = plainGreedy(job.sampler) ? greedyToken(ctx, logitRow[i], vocabSize) : -1;
                    if (token < 0) {
                        job.sampler->rebuildChainIfNeeded();
                        llama_token_data_array candidates;
                        job.sampler->sample(ctx, logitRow[i], candidates, false);
                        if (candidates.size == 0 || candidates.selected < 0 ||
                            candidates.selected >= (int64_t)candidates.size) {
                            job.end = JOB_FAILED;
                            continue;
                        }
                        token = candidates.data[candidates.selected].id;
                    }
                    job.sampler->acceptToken(token);
                    job.sampled.push_back(token);
                    stepTokens.push_back(static_cast<int32_t>(i));
                    stepTokens.push_back(token);
                    if (llama_vocab_is_eog(vocab, token)) job.end = JOB_EOG;
                    else if (static_cast<int32_t>(job.sampled.size()) >= job.maxNew) job.end = JOB_LENGTH;
                    else {
                        job.input.assign(1, token);
                        job.consumed = 0;
                    }
                }
                if (!stepTokens.empty()) sendOrHold(progress, stepTokens);
            }
        } catch (const std::exception& e) {
            SetError(e.what());
        } catch (...) {
            SetError("Unknown error in tabagentDecodeSteps");
        }
        llama_batch_free(batch);
    }

    void OnProgress(const int32_t* data, size_t count) override {
        Napi::HandleScope scope(Env());
        std::vector<int32_t> held(data, data + count);
        while (!held.empty()) {
            Napi::Int32Array tokens = Napi::Int32Array::New(Env(), held.size());
            for (size_t i = 0; i < held.size(); i++) tokens[i] = held[i];
            Callback().Call({tokens});
            // What the steps sampled while JS handled this message goes now, in one message.
            std::lock_guard<std::mutex> lock(heldMutex);
            held.swap(heldTokens);
            heldTokens.clear();
            if (held.empty()) messageInFlight = false;
        }
    }

    // Per job: [end, decoded, sampled count, ...sampled tokens].
    void OnOK() override {
        size_t size = 0;
        for (const auto& job : jobs) size += 3 + job.sampled.size();
        Napi::Int32Array result = Napi::Int32Array::New(Env(), size);
        size_t at = 0;
        for (const auto& job : jobs) {
            result[at++] = job.end;
            result[at++] = job.decoded;
            result[at++] = static_cast<int32_t>(job.sampled.size());
            for (const llama_token token : job.sampled) result[at++] = token;
        }
        deferred.Resolve(result);
    }
    void OnError(const Napi::Error& error) override { deferred.Reject(error.Value()); }

  private:
    /**
     * Sends a step's tokens to JS, or holds them while JS has not handled the last message: when the
     * steps outpace JS (a small model), one message carries several steps instead of a queue of them.
     */
    void sendOrHold(const ExecutionProgress& progress, const std::vector<int32_t>& step) {
        {
            std::lock_guard<std::mutex> lock(heldMutex);
            if (messageInFlight) {
                heldTokens.insert(heldTokens.end(), step.begin(), step.end());
                return;
            }
            messageInFlight = true;
        }
        progress.Send(step.data(), step.size());
    }

    bool flag(size_t index) const { return __atomic_load_n(controlFlags + index, __ATOMIC_ACQUIRE) != 0; }

    AddonContext* context;
    Napi::Promise::Deferred deferred;
    Napi::Reference<Napi::Int32Array> controlRef;
    const int32_t* controlFlags = nullptr;
    std::mutex heldMutex;
    std::vector<int32_t> heldTokens;  // sampled while a message was in flight
    bool messageInFlight = false;
    std::vector<DecodeJob> jobs;
};

// tabagentDecodeSteps(context, sequences, positions, inputs, inputOffsets, samplers, maxNew, onStep,
//   control): Promise<Int32Array>; see TabagentDecodeWorker. control: [pause, threads, stop job 0, ...].
// Reads the arguments into `args`; returns what is wrong with them, or nullptr.
static const char* readDecodeStepsArguments(const Napi::CallbackInfo& info, DecodeStepsArguments& args) {
    if (info.Length() < 9 || !info[1].IsTypedArray() || !info[2].IsTypedArray() || !info[3].IsTypedArray() ||
        !info[4].IsTypedArray() || !info[5].IsArray() || !info[6].IsTypedArray() || !info[7].IsFunction() ||
        !info[8].IsTypedArray()) {
        return "expected (context, sequences, positions, inputs, inputOffsets, samplers, maxNew, onStep, control)";
    }
    args = DecodeStepsArguments{
        info[1].As<Napi::Int32Array>(), info[2].As<Napi::Int32Array>(), info[3].As<Napi::Uint32Array>(),
        info[4].As<Napi::Int32Array>(), info[5].As<Napi::Array>(),      info[6].As<Napi::Int32Array>(),
        info[7].As<Napi::Function>(),   info[8].As<Napi::Int32Array>(),
    };
    const auto& [sequences, positions, inputs, offsets, samplers, maxNew, onStep, control] = args;
    const size_t count = sequences.ElementLength();
    if (sequences.TypedArrayType() != napi_int32_array || positions.TypedArrayType() != napi_int32_array ||
        inputs.TypedArrayType() != napi_uint32_array || offsets.TypedArrayType() != napi_int32_array ||
        maxNew.TypedArrayType() != napi_int32_array || control.TypedArrayType() != napi_int32_array) {
        return "wrong typed array types";
    }
    if (control[1] < 1) return "control[1] must be the thread count";
    if (count == 0 || positions.ElementLength() != count || offsets.ElementLength() != count + 1 ||
        samplers.Length() != count || maxNew.ElementLength() != count || control.ElementLength() < count + 2) {
        return "arrays of different lengths";
    }
    for (size_t i = 0; i < count; i++) {
        const int32_t from = offsets[i], to = offsets[i + 1];
        if (from < 0 || to <= from || static_cast<size_t>(to) > inputs.ElementLength()) return "every job needs input tokens";
        if (positions[i] < 0 || maxNew[i] < 1) return "a negative position or no token to sample";
        const Napi::Value sampler = samplers.Get(i);
        if (!isInstance(sampler, "AddonSampler")) return "a sampler is not an AddonSampler";
        AddonSampler* unwrapped = Napi::ObjectWrap<AddonSampler>::Unwrap(sampler.As<Napi::Object>());
        if (unwrapped == nullptr || unwrapped->disposed) return "a sampler is disposed";
    }
    return nullptr;
}

static Napi::Value tabagentDecodeSteps(const Napi::CallbackInfo& info) {
    AddonContext* context = info.Length() > 0 && isInstance(info[0], "AddonContext")
        ? Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>())
        : nullptr;
    if (context == nullptr || context->ctx == nullptr || context->disposed) {
        Napi::Error::New(info.Env(), "Context is disposed").ThrowAsJavaScriptException();
        return info.Env().Undefined();
    }
    DecodeStepsArguments args;
    if (const char* error = readDecodeStepsArguments(info, args)) {
        Napi::TypeError::New(info.Env(), std::string("tabagentDecodeSteps: ") + error).ThrowAsJavaScriptException();
        return info.Env().Undefined();
    }
    TabagentDecodeWorker* worker = new TabagentDecodeWorker(info.Env(), args, context);
    worker->Queue();
    return worker->GetPromise();
}

void tabagent_register(Napi::Object exports) {
    addonExports = Napi::Persistent(exports);
    addonExports.SuppressDestruct();
    exports.Set("tabagentCopySequencePrefix", Napi::Function::New(exports.Env(), tabagentCopySequencePrefix));
    exports.Set("tabagentDecodeSteps", Napi::Function::New(exports.Env(), tabagentDecodeSteps));
}
