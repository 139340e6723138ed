"""Answers that answer: the kind of sentence asked for, and whole lists where the documents wrote one.

A question asking for advantages, drawbacks, steps or examples gets sentences labelled that
way; when the best passage answers with a list, the answer is the list, whole and in order,
as bullets; a definition is quoted only when one is asked for.
"""
from __future__ import annotations

from knowledge.lists import list_blocks
from retrieval.intent import load_intents

FLAT = """开源与闭源模式各有优缺点，具体选择需综合考虑以下因素：

**开源模式**：

**优点**：
1. **透明度和社区协作**：增加模型开发和应用的公开度。
2. **高可达性**：模型可以在更广泛的场景中使用。

**缺点**：
1. **知识产权保护**：缺乏对模型商业应用的严格控制。

**闭源模式**：

**优点**：
1. **知识产权保护**：完全控制模型的商业应用和分发。
"""

NESTED = """- **开源模式**：
  优点：
  1. **高可达性**：任何人都可以免费使用和分发。
  2. **激励创新**：开源社区聚集了大量技术人才。

```python
# 1. not a list item
```
A: 需要考虑以下几个方面：

1. **模型核心功能的开放**：选择开放模型的核心功能。

2. **授权和许可机制**：通过授权和许可机制。
"""


def test_lists_are_read_with_their_lead_and_the_labels_above_them():
    blocks = list_blocks(FLAT)
    assert [(b.labels, b.lead, len(b.items)) for b in blocks] == [
        (("开源模式",), "优点：", 2), (("开源模式",), "缺点：", 1), (("闭源模式",), "优点：", 1)]
    assert blocks[0].items[1] == "高可达性：模型可以在更广泛的场景中使用。"


def test_nested_lists_code_fences_and_blank_lines_between_items():
    blocks = list_blocks(NESTED)
    assert blocks[1].labels == ("开源模式",) and blocks[1].lead == "优点："
    assert blocks[-1].lead == "A: 需要考虑以下几个方面：" and len(blocks[-1].items) == 2
    assert not any("not a list item" in item for b in blocks for item in b.items)


def test_a_question_says_what_it_asks_for_and_about_which_model():
    model = load_intents()
    assert model.of("What are the risks of open-sourcing our model?").kinds == {"drawbacks"}
    assert model.of("What are the risks of open-sourcing our model?").subjects == {"open"}
    closed = model.of("闭源模式有哪些优点？")
    assert closed.kinds == {"advantages"} and closed.subjects == {"closed"}
    assert model.of("What is open source?").kinds == {"definition"}
    assert model.of("Any real-world examples?").kinds == {"examples"}
    assert model.of("Tell me about licensing.").kinds == frozenset()
    assert model.of("What trends do they predict going forward?").kinds == {"trends"}


def test_how_alone_asks_for_steps_too_weakly_to_reorder_passages():
    model = load_intents()
    weak = "开源模式在数学建模那部分是怎么表示的？"
    assert model.of(weak).kinds == {"steps"}
    assert model.strongly_asked(model.of(weak), weak).kinds == frozenset()
    strong = "走开源路线的话，具体分几步？"
    assert model.strongly_asked(model.of(strong), strong).kinds == {"steps"}
    risks = "What are the risks of open-sourcing our model?"
    assert model.strongly_asked(model.of(risks), risks).kinds == {"drawbacks"}  # no weak words for risks


def test_a_list_labelled_with_the_opposite_or_the_other_model_scores_lower():
    model = load_intents()
    asks = model.of("What are the advantages of a closed-source model?")
    right = model.adjustment(asks, "闭源模式 优点：", "完全控制模型的商业应用。")
    assert right > model.adjustment(asks, "闭源模式 缺点：", "缺乏透明度。")
    assert right > model.adjustment(asks, "开源模式 优点：", "任何人都可以免费使用。")
    definition = "开源：指将软件或模型的代码公开共享。"
    assert model.adjustment(asks, "", definition) < 0
    assert model.adjustment(model.of("What is open source?"), "", definition) == 0


def test_an_faq_answer_is_given_whole_in_order_each_item_cited(kb):
    """The issue's example: all four measures of FAQ Q3, in English, each cited, originals in quotes."""
    answer = kb.ask("How do we balance transparency and IP?")
    measures = ["模型核心功能的开放", "商业应用的专有控制", "开源与闭源相结合", "授权和许可机制"]
    sources = [q.source for q in answer.quotes]
    assert [next(i for i, s in enumerate(sources) if s.startswith(m)) for m in measures] == [0, 1, 2, 3]
    lines = answer.answer.splitlines()[1:]
    assert all(line.startswith("• ") and line.endswith(f"[{answer.quotes[0].n}]") for line in lines[:4])
    assert all(q.language == "en" for q in answer.quotes)


def test_a_question_weighing_open_against_closed_gets_both_lists_under_their_labels(kb):
    """The scenario passage answers with a list per model; one of them alone answers half the question."""
    answer = kb.ask("We're building a customer support chatbot. Should we use an open or a closed model?")
    lines = answer.answer.splitlines()
    assert "Open-source model:" in lines and "Closed-source model:" in lines
    opened, closed = lines.index("Open-source model:"), lines.index("Closed-source model:")
    assert opened < closed and all(line.startswith("• ") for line in lines[opened + 1:closed])
    assert answer.coverage == "answered" and len({q.n for q in answer.quotes}) == 1  # one passage, cited
    assert any("智能客服系统" in q.source for q in answer.quotes)
    assert answer.answer.count("• ") <= 6  # still a handful of bullets


def test_a_question_naming_both_models_but_asking_something_else_gets_no_pair_of_lists(kb):
    answer = kb.ask("为什么说开源还是闭源这个选择对企业很重要？")
    assert "开源模式：" not in answer.answer.splitlines()


def test_advantages_of_closed_source_are_its_advantages_not_its_drawbacks(kb):
    answer = kb.ask("What are the advantages of a closed-source model?")
    shown = " ".join(q.source for q in answer.quotes)
    assert "完全控制" in shown and "缺乏透明度" not in shown and "受限于" not in shown
    assert answer.answer.count("• ") >= 3


def test_a_definition_is_quoted_when_asked_for_and_not_as_a_list(kb):
    answer = kb.ask("What is open source?")
    assert "• " not in answer.answer
    assert any("指" in q.source for q in answer.quotes)


def test_only_a_question_that_refers_back_is_a_follow_up():
    model = load_intents()
    follow_ups = ["What about open source?", "And what are the downsides of that approach?", "How can we reduce them?",
                  "那闭源呢？", "Why?"]
    independent = ["开源模式的主要优点是什么？", "Is it safe to open-source our model?",
                   "How do we balance transparency and IP?", "What does the document say about data privacy?"]
    assert [model.is_follow_up(q) for q in follow_ups] == [True] * len(follow_ups)
    assert [model.is_follow_up(q) for q in independent] == [False] * len(independent)


def test_an_independent_question_in_a_thread_is_answered_as_if_asked_alone(kb):
    """The console chat fed earlier questions into every search: three advantages became one."""
    question = "开源模式的主要优点是什么？"
    alone = kb.ask(question).to_dict()
    in_thread = kb.ask(question, history=["开源和闭源在成本上有什么区别？"]).to_dict()
    alone.pop("timings_ms"), in_thread.pop("timings_ms")
    assert in_thread == alone


def test_a_follow_up_keeps_what_the_thread_asked_for_and_changes_the_model(kb):
    answer = kb.ask("What about open source?", history=["What are the advantages of a closed-source model?"])
    shown = " ".join(q.source for q in answer.quotes)
    assert "任何人都可以免费使用" in shown or "透明度和社区协作" in shown
    assert "完全控制" not in shown and answer.answer.count("• ") >= 2


def test_what_the_documents_do_not_give_is_said_first():
    model = load_intents()
    quoted = "典型的大模型包括BERT、GPT-3等。"  # a name with a digit is not a figure
    assert model.not_given("How many parameters does wav2vec 2.0 Large have?", quoted, "en") == "that figure"
    assert model.not_given("Which open-source license does BERT use?", quoted, "en") == "which licence to use"
    assert model.not_given("模型参数量是多少？", "参数规模达到1750亿。", "zh") is None
    assert model.not_given("How many steps are there?", "开发和训练…", "en", is_list=True) is None
    assert model.not_given("What are the advantages of open source?", quoted, "en") is None
    # a blind question asked it this way and was answered as if covered
    assert model.not_given("When exactly did Google open-source BERT? Need the date.", quoted, "en") == "dates"


def test_a_near_domain_question_is_partial_never_answered_as_if_covered(kb):
    """The documents mention Wav2Vec but never its size: the answer says so before the closest text."""
    answer = kb.ask("How many parameters does wav2vec 2.0 Large have?")
    assert answer.coverage in {"partial", "declined"}
    if answer.coverage == "partial":
        assert answer.answer.startswith("The documents don't give that figure; the closest they say is")
        assert not answer.abstained and answer.to_dict()["coverage"] == "partial"
    covered = kb.ask("What are the advantages of a closed-source model?")
    assert covered.coverage == "answered" and kb.ask("How do I bake sourdough bread?").coverage == "declined"


def test_sources_are_numbered_in_the_order_the_answer_uses_them(kb):
    """[1] is the passage the answer rests on, whatever its search rank; unused passages follow."""
    answer = kb.ask("闭源模式有哪些优点？")
    used = list(dict.fromkeys(q.n for q in answer.quotes))
    assert used == list(range(1, len(used) + 1))
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert sorted(c.rank for c in answer.citations) == list(range(1, len(answer.citations) + 1))
    assert any(c.rank != c.n for c in answer.citations)  # here the list comes from a lower-ranked passage
    cited = {c.n: c.text for c in answer.citations}
    assert all(q.source in cited[q.n].replace("**", "") for q in answer.quotes)


def test_a_question_about_the_sample_code_quotes_the_code_line_verbatim(kb):
    answer = kb.ask("Which Python version does the dev environment setup use?")
    code = [q for q in answer.quotes if q.language == "code"]
    assert [q.source for q in code] == ["conda create -n pytorch-env python=3.8"]
    assert f"`conda create -n pytorch-env python=3.8` [{code[0].n}]" in answer.answer
    assert answer.answer.startswith("From the documents (translated")  # code is not a missing translation


def test_a_question_not_about_code_quotes_no_code(kb):
    answer = kb.ask("What are the advantages of a closed-source model?")
    assert all(q.language != "code" for q in answer.quotes) and "`" not in answer.answer


def test_diagrams_and_placeholders_are_not_code_to_quote():
    from knowledge.chunking import Chunk
    from retrieval.code_quotes import code_lines, matching_lines

    text = ("说明\n```\ngraph TB\n    A[开源] --> B[透明]\n```\n"
            "```python\n# 部署模型\nmodel = load('model.pth')\n...\n```")
    chunk = Chunk(chunk_id="c", doc_id="d", title="t", section="s", ordinal=0, kind="text", text=text)
    assert code_lines(chunk) == ["# 部署模型", "model = load('model.pth')"]
    found = matching_lines([chunk], {"部署", "模型"})
    assert [line.text for line in found] == ["# 部署模型\nmodel = load('model.pth')"]
    assert matching_lines([chunk], {"部署"}) == []  # one common Chinese word is not evidence enough


def test_the_passage_with_the_list_asked_for_is_brought_up_from_lower_down(kb):
    """The one passage listing closed source's drawbacks ranks low for an English paraphrase;
    its labelled list is what the question asks for, so it is answered from (intent_rank.py)."""
    answer = kb.ask("What are the drawbacks of a proprietary approach?")
    shown = " ".join(q.source for q in answer.quotes)
    assert "闭源模型缺乏透明度" in shown and "创新动力不足" in shown
    assert "企业对模型拥有完全控制权" not in shown  # an advantage of closed source, not a drawback
    assert answer.answer.count("• ") >= 3


def test_when_the_chosen_sentences_are_items_of_one_list_the_whole_list_is_given(kb):
    """Three of five future trends, out of their list, answer less than the list itself."""
    answer = kb.ask("开源以后会成为主流吗？")
    lines = [line for line in answer.answer.splitlines() if line.startswith("• ")]
    assert len(lines) == 5 and "开源模式的市场主导" in lines[0] and "开源社区的持续活跃" in lines[-1]
    assert len({q.n for q in answer.quotes}) == 1


def test_a_glossary_is_never_given_whole_unasked(kb):
    answer = kb.ask("What are large language models and how are they trained?")
    assert "• " not in answer.answer
    assert not any("技术透明度(Transparency)" in q.source for q in answer.quotes)


def test_a_flowchart_is_no_list_of_steps():
    """"这个流程图展示了…：" leads a list of concepts; "流程" alone asks for or labels steps."""
    model = load_intents()
    assert model.kinds_labelled("这个流程图展示了大语言模型商业化过程中的核心概念及其之间的关系：") == frozenset()
    assert model.kinds_labelled("3.2 算法步骤详解 闭源模式：") == {"steps"}
    assert "steps" not in model.of("有没有一张把所有概念串起来的流程图？").kinds
    assert "steps" in model.of("如果走闭源路线，具体流程是怎样的？").kinds


def test_steps_are_the_steps_of_the_model_asked_about(kb):
    """Steps are labelled only by their passage's heading ("3.2 算法步骤详解"); a passage whose list
    merely ends a lead-in with a colon ("1.3 问题研究意义：") must not answer instead."""
    answer = kb.ask("What are the concrete steps if we go the open-source route?")
    shown = " ".join(q.source for q in answer.quotes)
    assert "基于开源社区和研究机构提供的算法和工具" in shown and "将模型和代码公开发布" in shown
    assert "技术透明与创新" not in shown  # 1.3's first point
    first = answer.citations[0]  # the heading names steps: the passage leads the search (heading_promote_to)
    assert first.section.endswith("3.2 算法步骤详解") and first.rank == 1
    closed = kb.ask("走闭源路线的话，一般分哪几步来做？")
    lines = [line for line in closed.answer.splitlines() if line.startswith("• ")]
    assert len(lines) >= 3 and "企业内部进行模型的开发和训练" in lines[0]
    assert "大语言模型通过预训练获得基础能力" not in closed.answer  # the concept flowchart


def test_challenges_are_the_documents_list_of_challenges(kb):
    """"面临的挑战" is a list of what stands in the way of both models, named by its heading only;
    a question about hurdles gets that list whole, not the introduction's key points."""
    assert load_intents().of("开源闭源接下来有哪些难题要解决？").kinds == {"challenges"}
    answer = kb.ask("开源闭源接下来有哪些难题要解决？")
    lines = [line for line in answer.answer.splitlines() if line.startswith("• ")]
    assert len(lines) == 5 and "知识产权保护的复杂性" in lines[0] and "生态系统的协同问题" in lines[-1]
    assert {q.n for q in answer.quotes} == {1}


def test_a_near_tie_goes_to_the_higher_passage_whose_list_answers(kb):
    """FAQ Q1 is the question itself; FAQ Q2's closing summary sentence scored 0.001 higher and its
    ecosystem lists were given instead (retrieval/answer.py `_anchor`, `anchor_tie`)."""
    answer = kb.ask("开源闭源对模型效果本身有没有影响？")
    shown = " ".join(q.source for q in answer.quotes)
    assert "有助于模型的快速迭代和优化" in shown and "提升应用效果" in shown
    assert "鼓励开发者和研究机构共同构建生态系统" not in shown  # FAQ Q2, about the ecosystem


def test_a_question_naming_no_topic_asks_for_the_labelled_list():
    model = load_intents()
    assert model.asks_only_kind("What are the benefits of going open source?")
    assert model.asks_only_kind("闭源有哪些短板？")
    assert not model.asks_only_kind("闭源对用户体验到底有没有好处？")  # the user-experience passage answers it
    assert not model.asks_only_kind("For financial news monitoring, what do we gain by using an open model?")


def test_advantages_with_no_topic_are_the_list_labelled_advantages_of_that_model(kb):
    """"1.2 问题核心关键点" ends its lead in a colon and was given instead of open source's 优点."""
    answer = kb.ask("What are the benefits of going open source?")
    shown = " ".join(q.source for q in answer.quotes)
    assert "任何人都可以免费使用和分发" in shown and "开源社区聚集了大量技术人才" in shown
    assert "开源与闭源的区别与联系" not in shown


def test_what_a_question_names_besides_its_kind_and_model_is_its_topic():
    model = load_intents()
    assert model.topic_terms("在NLP领域，企业一般是开源还是闭源？") == ["nlp", "领域"]
    assert model.topic_terms("What are the benefits of going open source?") == []
    assert "ecosystem" in model.topic_terms("How does the open/closed choice shape the ecosystem around a model?")


def test_a_question_on_a_field_is_answered_from_that_field_not_with_a_generic_pair_of_lists(kb):
    """"在NLP领域…开源还是闭源？" names both models, but FAQ Q5's two lists say nothing of NLP; the
    sentences that name the field are what answer it (`topic_bonus`)."""
    answer = kb.ask("在NLP领域，企业一般是开源还是闭源？")
    assert "开源模式：" not in answer.answer  # no generic pair of lists
    assert any("商业客户服务" in q.source for q in answer.quotes)
    field = kb.ask("在计算机视觉领域，大家一般开源还是闭源？")
    assert any("计算机视觉（CV）" in q.source for q in field.quotes)


def test_a_follow_up_keeps_its_threads_topic(kb):
    """"那闭源呢？" names no topic itself; the thread's (智能客服) still decides, not the generic 优点 list."""
    answer = kb.ask("那闭源呢？", history=["做智能客服的话，用开源模型有啥好处？"])
    assert any("智能客服系统" in q.source for q in answer.quotes)


def test_what_does_asks_for_a_definition_only_with_mean():
    """"What does going open source buy us?" asks for advantages; it was read as asking for a
    definition, which gets no list."""
    model = load_intents()
    assert model.of("For a recommendation engine, what does going open source buy us?").kinds == {"advantages"}
    assert model.of("What does open core mean?").kinds == {"definition"}


def test_a_use_cases_list_is_given_whole_with_its_lead_in_counted_for_it(kb):
    """The 智能客服 passage opens with a sentence and lists closed source's three gains; the answer
    quoted the opening and two of the three, missing 成本控制."""
    answer = kb.ask("做智能客服，闭源能带来什么？")
    lines = [line for line in answer.answer.splitlines() if line.startswith("• ")]
    assert len(lines) == 3 and "智能客服系统的完全控制" in lines[0] and "企业自主管理运营和维护成本" in lines[-1]


def test_a_question_whose_topic_heads_the_best_passage_is_answered_not_declined(kb):
    """"有什么入门学习资料可以看？" sounds everyday (its margin over the background set is just below
    zero), but "7.1 学习资源推荐" is a section on exactly that (`heading_relief`)."""
    answer = kb.ask("有什么入门学习资料可以看？")
    assert answer.coverage == "answered" and "Coursera深度学习课程" in answer.answer
    assert kb.ask("有什么好的做饭入门资料？").coverage == "declined"
    assert kb.ask("can someone recommend a good vegan lasagna recipe").coverage == "declined"
