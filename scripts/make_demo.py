"""Build examples/demo/: a small folder deepfolder may redistribute (all text written for it).

The demo is a fictional community-library survey (a 3-page PDF) plus a JSON collection
of short web-style articles in Chinese and English, and a request in query.txt.
Run: python scripts/make_demo.py  (needs fpdf2 and the Noto CJK font from Debian's
fonts-noto-cjk). The generated files are committed, so users never need to run this.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")

PAGES = [
    (
        "青禾区社区图书馆数字化服务调研报告（2025）",
        [
            "一、调研背景与方法",
            "青禾区共有社区图书馆14家，2023年起陆续开通电子书借阅、线上预约和自助借还服务。"
            "为评估数字化服务的效果，区文化馆于2025年3月至5月开展调研，共回收有效问卷1,268份，"
            "并对9家图书馆的馆员进行了访谈。",
            "问卷对象中，18至35岁读者占41%，36至59岁读者占37%，60岁及以上读者占22%。"
            "调研同时收集了各馆2023年和2024年的借阅系统数据。",
        ],
    ),
    (
        "二、主要发现",
        [
            "2024年全区电子书借阅量为8.6万册次，比2023年的5.1万册次增长69%；"
            "纸质书借阅量为21.4万册次，比2023年下降4%。",
            "线上预约服务的使用率为58%，读者对预约取书的满意度为4.3分（满分5分）。"
            "自助借还机的平均排队时间从6分钟降至2分钟。",
            "60岁及以上读者中，只有19%使用过电子书借阅，主要障碍是不会注册账号（占47%）"
            "和担心看屏幕伤眼（占31%）。",
            "夜间（19时至22时）是电子书借阅的高峰，占全天借阅量的44%。",
        ],
    ),
    (
        "三、问题与建议",
        [
            "调研发现三个主要问题：一是老年读者的数字鸿沟明显；二是电子书馆藏以畅销书为主，"
            "地方文献和少儿读物的电子版不足；三是各馆系统分散，读者需要分别注册。",
            "建议：在每家图书馆设置每周一次的“数字助老”辅导时段；"
            "两年内将地方文献电子化比例提高到30%；2026年底前建成全区统一的读者账号。",
            "报告编写：青禾区文化馆调研组。本报告中的数据仅用于示例演示。",
        ],
    ),
]

ARTICLES = [
    {
        "title": "社区图书馆夜间开放受欢迎",
        "content": "多地社区图书馆尝试延长开放时间至晚上十点。青禾区的经验显示，夜间读者以上班族为主，"
        "他们更倾向于线上预约后到馆取书。馆员表示，夜间开放需要增加安保和志愿者支持。",
        "url": "https://example.org/news/library-night",
    },
    {
        "title": "老年人如何跨越阅读数字鸿沟",
        "content": "调查显示，老年人使用电子书的主要障碍在于注册流程复杂和对屏幕阅读的顾虑。"
        "一些图书馆推出大字版界面和一对一辅导，参与辅导的老年读者中有六成在一个月内完成了首次电子借阅。",
        "url": "https://example.org/news/elderly-digital",
    },
    {
        "title": "地方文献数字化的难点",
        "content": "地方文献多为内部资料和旧报刊，版权归属不清、纸张老化，是数字化的主要难点。"
        "专家建议先对无版权争议的史志资料进行扫描和文字识别，并建立统一的元数据标准。",
        "url": "https://example.org/news/local-archives",
    },
    {
        "title": "Unified library accounts reduce friction",
        "content": "Cities that merged the reader accounts of their branch libraries report fewer "
        "abandoned registrations. A single account lets readers reserve a book at one branch and "
        "pick it up at another, and makes lending statistics comparable across branches.",
        "url": "https://example.org/en/unified-accounts",
    },
    {
        "title": "E-book lending grows, print holds steady",
        "content": "Public libraries saw e-book loans grow strongly after 2022, while print loans "
        "declined only slightly. Librarians say e-books attract younger readers at night, when "
        "branches are closed, rather than replacing visits.",
        "url": "https://example.org/en/ebook-trends",
    },
    {
        "title": "少儿电子读物供给不足",
        "content": "家长反映，图书馆电子书平台上适合低龄儿童的绘本和有声读物较少。"
        "出版机构对少儿电子版授权较为谨慎，图书馆可通过联合采购降低成本。",
        "url": "https://example.org/news/children-ebooks",
    },
    {
        "title": "自助借还设备的运维经验",
        "content": "自助借还机投入使用后，排队时间明显缩短，但设备故障时需要馆员及时响应。"
        "部分图书馆建立了设备巡检制度，每周检查一次读卡器和传送带。",
        "url": "https://example.org/news/self-service",
    },
    {
        "title": "城市书房与社区图书馆的分工",
        "content": "城市书房侧重阅读空间和夜间服务，社区图书馆侧重借阅和活动组织。"
        "两者共享书目系统后，读者可以在任一地点归还图书。",
        "url": "https://example.org/news/city-study-rooms",
    },
]

REQUEST = (
    "请基于文件夹中的调研报告和相关文章，撰写一篇《社区图书馆数字化服务分析》。"
    "报告需使用正式书面语，包含以下章节：（1）背景；（2）主要发现；（3）问题与建议；（4）参考资料。"
    "全文字数在600至900字之间，并标注信息来源。"
)


def make_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_font("NotoSansCJK", "", str(FONT), collection_font_number=2)  # Simplified Chinese
    pdf.set_title("青禾区社区图书馆数字化服务调研报告（2025）")
    pdf.set_creator("deepfolder scripts/make_demo.py")
    for heading, paragraphs in PAGES:
        pdf.add_page()
        pdf.set_font("NotoSansCJK", size=16)
        pdf.multi_cell(0, 10, heading)
        pdf.ln(4)
        pdf.set_font("NotoSansCJK", size=11)
        for para in paragraphs:
            pdf.multi_cell(0, 7, para)
            pdf.ln(3)
    pdf.output(str(path))


def main() -> int:
    if not FONT.exists():
        print(f"missing {FONT}: apt-get install fonts-noto-cjk", file=sys.stderr)
        return 1
    DEMO.mkdir(parents=True, exist_ok=True)
    make_pdf(DEMO / "社区图书馆调研报告.pdf")
    (DEMO / "long_context_articles.json").write_text(
        json.dumps(ARTICLES, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (DEMO / "query.txt").write_text(REQUEST + "\n", encoding="utf-8")
    (DEMO.parent / "README.md").write_text(
        "# deepfolder demo folder\n\nA fictional survey report (PDF, 3 pages) and a small "
        "collection of articles (`long_context_articles.json`), all written for deepfolder's "
        "demo and free to redistribute (Apache-2.0, like the project). The request is in "
        "`query.txt`. Rebuild with `python scripts/make_demo.py`.\n",
        encoding="utf-8",
    )
    print(f"wrote {DEMO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
