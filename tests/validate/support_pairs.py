"""Hand-made claim/evidence pairs for calibrating the local support thresholds.

Each pair: (claim, evidence, label) with label "supported" (the evidence states the
claim, possibly reworded) or "unsupported" (related topic, but the evidence does not say
it, or says something else). Written for this project; free to redistribute.
"""

from __future__ import annotations

PAIRS: list[tuple[str, str, str]] = [
    # --- supported, Chinese ---
    (
        "2023年我国直播电商交易规模达到4.9万亿元，同比增长35%。",
        "数据显示，2023年我国直播电商交易规模达4.9万亿元，同比增长35%，占网络零售总额的比重进一步提升。",
        "supported",
    ),
    (
        "避风港原则要求网络服务提供者在接到通知后及时采取删除、屏蔽等必要措施。",
        "根据避风港原则，网络服务提供者接到权利人的通知后，应当及时采取删除、屏蔽、断开链接等必要措施，否则对损害的扩大部分承担连带责任。",
        "supported",
    ),
    (
        "学生的睡眠质量与压力水平呈明显负相关。",
        "相关分析显示，睡眠质量得分越高的学生，其自评压力水平越低，两者呈显著负相关（r=-0.62）。",
        "supported",
    ),
    (
        "主播在直播中对商品作虚假宣传的，可能被认定为广告发布者并承担相应责任。",
        "主播在直播带货中对商品进行推荐和介绍，若存在虚假宣传，可能被认定为广告发布者或广告代言人，依法承担相应的法律责任。",
        "supported",
    ),
    (
        "截至2021年底，美国累计确诊病例超过5400万例。",
        "截至2021年12月31日，美国累计报告确诊病例超过5400万例，居全球首位。",
        "supported",
    ),
    (
        "平台对主播的审核义务随其获利程度而提高。",
        "法院认为，平台从主播带货中直接获取经济利益的，应当对主播及其推广的商品负有更高的审核注意义务。",
        "supported",
    ),
    # --- supported, English ---
    (
        "DPO optimizes the policy directly from preference data without training a reward model.",
        "Direct Preference Optimization (DPO) fits the policy directly to human preference data, "
        "removing the need to train an explicit reward model.",
        "supported",
    ),
    (
        "DeepSeek-R1-Zero was trained with reinforcement learning without supervised fine-tuning.",
        "We introduce DeepSeek-R1-Zero, a model trained via large-scale reinforcement learning "
        "(RL) without supervised fine-tuning (SFT) as a preliminary step.",
        "supported",
    ),
    (
        "Students who reported poor sleep also reported higher stress levels.",
        "Respondents with poor sleep quality reported markedly higher stress levels than those "
        "who slept well.",
        "supported",
    ),
    # --- unsupported, Chinese ---
    (
        "2023年我国直播电商交易规模达到4.9万亿元，同比增长35%。",
        "网络主播应当遵守法律法规，遵循公序良俗，不得发布虚假或者引人误解的信息。",
        "unsupported",
    ),
    (
        "避风港原则最早起源于1998年美国的《数字千年版权法》。",
        "直播带货的商品退货率较高，消费者投诉主要集中在产品质量和售后服务方面。",
        "unsupported",
    ),
    (
        "学生的社交媒体使用时长是影响压力的首要因素。",
        "样本共包含53名学生，变量包括睡眠质量、头痛频率、学业表现、学习负担和课外活动。",
        "unsupported",
    ),
    (
        "超过六成的消费者表示曾在直播间遇到虚假宣传。",
        "平台应当建立健全主播管理制度，对主播进行实名认证和分级管理。",
        "unsupported",
    ),
    (
        "疫情期间全球死亡人数在2020年4月达到峰值。",
        "该数据集记录了各国家和地区每日的累计确诊病例数，时间范围为2020年1月22日至2023年3月9日。",
        "unsupported",
    ),
    (
        "平台对主播的审核义务随其获利程度而提高。",
        "2023年直播电商用户规模达到5.4亿人，占网民整体的一半以上。",
        "unsupported",
    ),
    # --- unsupported, English ---
    (
        "DPO requires three times more GPU memory than PPO.",
        "Direct Preference Optimization (DPO) fits the policy directly to human preference data, "
        "removing the need to train an explicit reward model.",
        "unsupported",
    ),
    (
        "The model achieves 97.3% accuracy on MATH-500.",
        "Table 2 lists the training hyperparameters, including the learning rate and batch size.",
        "unsupported",
    ),
    (
        "Students who reported poor sleep also reported higher stress levels.",
        "The dataset contains 53 rows and 7 columns describing extracurricular activities.",
        "unsupported",
    ),
]

# A claim whose numbers were changed: lexically close, but it must not pass as supported.
CHANGED_NUMBER = (
    "2023年我国直播电商交易规模达到5.2万亿元，同比增长42%。",
    "数据显示，2023年我国直播电商交易规模达4.9万亿元，同比增长35%，占网络零售总额的比重进一步提升。",
)
