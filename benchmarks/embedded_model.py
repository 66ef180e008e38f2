"""Measure the embedded models: Chinese summary, tool calls, cited section writing, speed.

    python benchmarks/embedded_model.py [--models qwen2.5-coder-1.5b qwen2.5-coder-0.5b]
                                        [--threads 1 2] [--out results.json]

Needs llama-cpp-python and the part packages (skips a model whose parts are missing).
The inputs are self-contained (no ../shared/data needed). Outputs are printed in full so
a person can judge the summary's accuracy; results go to JSON for docs/notes/llm.md.
Keep max_tokens small: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from deepfolder.llm.base import ModelConfigError
from deepfolder.settings import Settings

PARAGRAPH = (
    "光伏发电是利用半导体界面的光生伏特效应而将光能直接转变为电能的一种技术。这种技术的关键元件是"
    "太阳能电池。太阳能电池经过串联后进行封装保护可形成大面积的太阳电池组件，再配合上功率控制器等"
    "部件就形成了光伏发电装置。近年来，随着材料科学的进步，单晶硅电池的量产转换效率已经超过百分之"
    "二十四，钙钛矿与晶硅叠层电池在实验室中的效率更是突破了百分之三十三。与此同时，组件价格在十年"
    "间下降了约九成，使光伏成为许多地区最便宜的新增电源。然而，钙钛矿材料在湿热环境下的长期稳定性"
    "仍未解决，退役组件的回收体系尚不完善，而白天集中出力的特点也给电网消纳和储能配套带来了压力。"
    "专家认为，未来五年行业的竞争重点将从单纯追求效率转向可靠性、回收和系统集成。"
)

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the indexed folder for passages relevant to a query.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "keywords to search for"},
                "k": {"type": "integer", "description": "number of results"},
            },
            "required": ["query"],
        },
    },
}
READ_TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read the full text of one evidence item by its id (E + 8 hex).",
        "parameters": {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "required": ["id"],
        },
    },
}
TOOL_PROMPTS = [
    "请在资料中查找钙钛矿电池稳定性的相关内容。",
    "Find material about the recycling of retired solar modules.",
    "我想知道光伏组件价格在过去十年的变化，帮我搜一下。",
    "Look up how grid operators handle midday solar peaks.",
]

EVIDENCE = [
    ("E1a2b3c4d", "单晶硅电池的量产转换效率已经超过24%，是目前市场的主流技术。"),
    ("E5e6f7a8b", "钙钛矿与晶硅叠层电池的实验室效率突破了33%，但湿热环境下的稳定性仍未解决。"),
    ("E9c0d1e2f", "过去十年光伏组件价格下降了约九成，光伏成为许多地区最便宜的新增电源。"),
    ("E3a4b5c6d", "退役组件的回收体系尚不完善，白天集中出力也给电网消纳带来压力。"),
]


def summary_task(model: Any) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": "你是严谨的中文研究助理。"},
        {
            "role": "user",
            "content": f"请用约150字概括下面这段文字，只根据原文，不要添加信息：\n\n{PARAGRAPH}",
        },
    ]
    start = time.perf_counter()
    reply = model.chat(messages, max_tokens=220, temperature=0.2)
    text = reply.content or ""
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "chars": len(re.findall(r"[\u4e00-\u9fff]", text)),
        "text": text,
        "usage": reply.usage.to_dict(),
    }


def tool_task(model: Any, mode: str) -> dict[str, Any]:
    model.tool_mode = mode
    results = []
    for prompt in TOOL_PROMPTS:
        start = time.perf_counter()
        reply = model.chat(
            [{"role": "user", "content": prompt}],
            tools=[SEARCH_TOOL, READ_TOOL],
            tool_choice="auto",
            max_tokens=80,
            temperature=0.0,
        )
        call = reply.tool_calls[0] if reply.tool_calls else None
        ok = bool(
            call
            and call.parse_error is None
            and call.name == "search"
            and isinstance(call.arguments.get("query"), str)
            and call.arguments["query"].strip()
        )
        results.append(
            {
                "prompt": prompt,
                "valid_search_call": ok,
                "call": call.to_dict() if call else None,
                "content": (reply.content or "")[:200],
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    return {
        "valid": sum(r["valid_search_call"] for r in results),
        "of": len(results),
        "results": results,
    }


def section_task(model: Any) -> dict[str, Any]:
    evidence = "\n".join(f"[{eid}] {text}" for eid, text in EVIDENCE)
    messages = [
        {"role": "system", "content": "你是严谨的中文研究助理。"},
        {
            "role": "user",
            "content": "根据下列证据写报告中的一节《光伏技术的进展与挑战》，约200字。"
            "每句话后用方括号注明所依据证据的编号，例如 [E1a2b3c4d]。只能使用下列证据。\n\n"
            + evidence,
        },
    ]
    start = time.perf_counter()
    reply = model.chat(messages, max_tokens=300, temperature=0.2)
    text = reply.content or ""
    cited = set(re.findall(r"E[0-9a-f]{8}", text))
    known = {eid for eid, _ in EVIDENCE}
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "text": text,
        "ids_kept": sorted(cited & known),
        "ids_invented": sorted(cited - known),
        "chars": len(re.findall(r"[\u4e00-\u9fff]", text)),
    }


def speed_task(model: Any) -> dict[str, Any]:
    """Prompt tok/s from a ~300-token prompt with 1 output token; generation tok/s from
    64 tokens after a short prompt (the prompt time is subtracted)."""
    llama = model.llama
    prompt = (PARAGRAPH * 2)[:600]
    llama.reset()
    start = time.perf_counter()
    out = llama.create_completion(prompt, max_tokens=1, temperature=0.0)
    prompt_s = time.perf_counter() - start
    prompt_tokens = out["usage"]["prompt_tokens"]
    llama.reset()
    short = "请写一段关于太阳能的介绍："
    start = time.perf_counter()
    llama.create_completion(short, max_tokens=1, temperature=0.0)
    short_s = time.perf_counter() - start
    llama.reset()
    start = time.perf_counter()
    out = llama.create_completion(short, max_tokens=64, temperature=0.0)
    gen_s = time.perf_counter() - start - short_s
    gen_tokens = out["usage"]["completion_tokens"]
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_tok_s": round(prompt_tokens / prompt_s, 1),
        "gen_tokens": gen_tokens,
        "gen_tok_s": round(max(gen_tokens - 1, 1) / max(gen_s, 1e-3), 1),
    }


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--tasks", nargs="+", default=["summary", "tools", "section", "speed"])
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        from deepfolder.llm.embedded import EmbeddedModel
    except ImportError as exc:
        print(f"skipped: {exc}")
        return 0
    results: dict[str, Any] = {}
    for name in args.models:
        settings = Settings.model_validate(
            {"embedded": {"name": name, "n_ctx": 2048, "n_threads": max(args.threads)}}
        )
        try:
            model = EmbeddedModel(settings)
        except ModelConfigError as exc:
            print(f"{name}: skipped: {exc}")
            continue
        entry: dict[str, Any] = {"load_before": loadavg()}
        if "summary" in args.tasks:
            entry["summary"] = summary_task(model)
            print(
                f"\n== {name} summary ({entry['summary']['chars']} 字)\n{entry['summary']['text']}"
            )
        if "tools" in args.tasks:
            for mode in ("schema", "chatml"):
                entry[f"tools_{mode}"] = tool_task(model, mode)
                t = entry[f"tools_{mode}"]
                print(f"\n== {name} tools/{mode}: {t['valid']}/{t['of']} valid search calls")
                for r in t["results"]:
                    print("  ", json.dumps(r["call"], ensure_ascii=False), "|", r["content"][:80])
        if "section" in args.tasks:
            entry["section"] = section_task(model)
            s = entry["section"]
            print(
                f"\n== {name} section: kept {s['ids_kept']} invented {s['ids_invented']}\n"
                f"{s['text']}"
            )
        if "speed" in args.tasks:
            for threads in args.threads:
                settings.embedded.n_threads = threads
                speed_model = EmbeddedModel(settings)
                entry[f"speed_t{threads}"] = {"load": loadavg(), **speed_task(speed_model)}
                print(f"\n== {name} speed n_threads={threads}: {entry[f'speed_t{threads}']}")
        results[name] = entry
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(results, fh, ensure_ascii=False, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
