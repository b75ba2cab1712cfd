"""Tokenizing (prompt, reply) for the safety classifier: one sequence, the backbone's special tokens around it."""

from rewardmodels.ml.data import Encoder


class SafetyEncoder(Encoder):
    """[CLS] prompt [SEP] reply [SEP] (the backbone's own special tokens; a prompt alone: [CLS] prompt [SEP]), at most
    max_length tokens. When both do not fit, the prompt keeps its END (at least a third of the room when it is long)
    and the reply its START: the request's last words and the reply's opening are where refusals show."""

    def encode_rows(self, prompts: list[str], responses: list[str | None]) -> tuple[list[list[int]], int]:
        unique = list(dict.fromkeys(prompts))
        by_prompt = dict(zip(unique, self._ids(unique)))
        present = [r for r in responses if r is not None]
        reply_ids = iter(self._ids(present))
        sequences, n_cut = [], 0
        room = self.budget - len(self.suffix)  # a reply costs one more separator
        for prompt, response in zip(prompts, responses):
            p = by_prompt[prompt]
            if response is None:
                kept = p[-self.budget:] if len(p) > self.budget else p
                sequences.append(self.prefix + kept + self.suffix)
                n_cut += len(kept) < len(p)
                continue
            r = next(reply_ids)
            if len(p) + len(r) <= room:
                p_keep, r_keep = len(p), len(r)
            else:
                p_keep = min(len(p), max(room - len(r), room // 3))
                r_keep = min(len(r), room - p_keep)
                n_cut += 1
            body = (p[len(p) - p_keep:] if p_keep else []) + self.suffix + r[:r_keep]
            sequences.append(self.prefix + body + self.suffix)
        return sequences, n_cut
