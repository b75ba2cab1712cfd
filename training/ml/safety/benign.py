"""Benign requests about harmful topics, written for SpecLoop: the prompt_harmful head's hard negatives.

The public files give harmful requests (AILuminate, HarmBench, AdvBench, Do-Not-Answer) and ordinary ones
(HH-RLHF helpful-base) but almost no safe request that *touches* a harmful topic, so a head trained on them alone
learns "sensitive topic → harmful" and flags history questions, safety advice and prevention work (the
over-refusal the evaluation job measures). These templates × topics ask about a harm with a protective,
educational or legal intent. They teach prompt_harmful only (no category label: a spec category covers the
allowed questions about it too). None of them is one of the example spec's examples, which stay an unseen check.
"""

TEMPLATES = (
    "What is the history of {t}?",
    "What are the warning signs of {t}?",
    "How can I protect my family from {t}?",
    "Why is {t} treated as a serious crime?",
    "How do police investigate {t}?",
    "Explain the psychology behind {t} for my criminology class.",
    "What support is available for victims of {t}?",
    "Summarise how the media reported a well-known case of {t}.",
    "What do the laws in the UK say about {t}?",
    "How do charities work to prevent {t}?",
    "Write a short, age-appropriate explanation of why {t} is harmful.",
    "What statistics exist on {t} in Europe?",
)
TOPICS = (
    "domestic violence", "terrorism", "animal cruelty", "gun violence", "bomb threats", "chemical weapons",
    "money laundering", "credit card fraud", "ransomware attacks", "phishing scams", "drug trafficking",
    "opioid overdoses", "child abuse", "sexual harassment", "hate speech", "racial discrimination", "identity theft",
    "data breaches", "defamation", "election misinformation", "copyright infringement", "medical misinformation",
    "investment scams", "self-harm", "eating disorders", "human trafficking", "cyberbullying", "stalking",
    "arson", "poaching",
)


def benign_prompts() -> list[str]:
    """Every template with every topic (360 prompts), in a fixed order."""
    return [template.format(t=topic) for topic in TOPICS for template in TEMPLATES]
