// The i_mmap interval tree: vma_interval_tree_* of mm/interval_tree.c, which
// include/linux/interval_tree_generic.h generates as an augmented red-black
// tree. unmap_mapping_range() asks it "which VMAs map pages [first, last] of
// this file?", so the query must not walk every mapping of a BAR.
//
// Items are keyed by a closed interval [start, last] of page offsets and
// ordered by start; an item inserted with a start equal to existing ones goes
// after them. Every node also caches subtreeLast (rb_subtree_last), the
// largest `last` in its subtree: a subtree whose subtreeLast is below the
// query's first page cannot overlap it and is skipped whole, and because the
// tree is ordered by start, so is everything right of a node starting after
// the query's last page.
//
// The tree does not own its items (Item is pointer-like, e.g. Vma*) and takes
// no lock: callers hold i_mmap_rwsem, shared to query and exclusive to change.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "base/assert.h"

namespace vfiomm {

template <typename Item>
class IntervalTree {
 public:
  IntervalTree() = default;
  // Nodes point at each other and root_ at one of them: a copy would share
  // nodes and a move would leave the source's root_ dangling.
  IntervalTree(const IntervalTree&) = delete;
  IntervalTree& operator=(const IntervalTree&) = delete;

  // vma_interval_tree_insert.
  void insert(Item item, uint64_t start, uint64_t last) {
    Node* node = newNode(item, start, last);
    Node* parent = nullptr;
    Side side = kLeft;
    for (Node* cur = root_; cur != nullptr; cur = cur->child[side]) {
      parent = cur;
      // Going right on equal starts puts the newcomer after its equals.
      side = start < cur->start ? kLeft : kRight;
    }
    link(node, parent, side);
  }

  // vma_interval_tree_insert_after: `item` becomes prev's in-order successor.
  // dup_mmap() links a child VMA right after its parent's so that rmap walks
  // meet the parent first. Like Linux (VM_BUG_ON_VMA) this requires equal
  // starts, which keeps the tree ordered; unlike Linux, which relies on fork's
  // child having the parent's `last` too, any `last` is accounted for.
  void insertAfter(Item prev, Item item, uint64_t start, uint64_t last) {
    Node* prevNode = nodeOf(prev);
    VFIOMM_ASSERT_MSG(start == prevNode->start, "insertAfter needs prev's start");
    Node* node = newNode(item, start, last);
    // The successor slot is prev's empty right link, or else the empty left
    // link of the leftmost node of prev's right subtree.
    if (prevNode->child[kRight] == nullptr) {
      link(node, prevNode, kRight);
      return;
    }
    link(node, leftmost(prevNode->child[kRight]), kLeft);
  }

  // vma_interval_tree_remove.
  void erase(Item item) {
    auto it = nodes_.find(item);
    VFIOMM_ASSERT_MSG(it != nodes_.end(), "erasing an item that is not in the tree");
    unlink(it->second.get());
    nodes_.erase(it);
  }

  bool contains(Item item) const { return nodes_.contains(item); }
  size_t size() const { return nodes_.size(); }
  bool empty() const { return nodes_.empty(); }

  // vma_interval_tree_foreach: fn(item, start, last) for every item whose
  // interval overlaps [first, last], in tree order. fn must not change the tree.
  template <typename Fn>
  void forEachOverlap(uint64_t first, uint64_t last, Fn&& fn) const {
    VFIOMM_ASSERT(first <= last);
    walkOverlap(root_, first, last, fn);
  }

  // How many nodes forEachOverlap(first, last) examines: lets tests and
  // benchmarks check that the query prunes rather than scans.
  size_t overlapVisitCount(uint64_t first, uint64_t last) const {
    VFIOMM_ASSERT(first <= last);
    auto ignore = [](Item, uint64_t, uint64_t) {};
    return walkOverlap(root_, first, last, ignore);
  }

  // fn(item, start, last) for every item, in tree order.
  template <typename Fn>
  void forEach(Fn&& fn) const {
    walkAll(root_, fn);
  }

  // Checks the red-black rules, the cached subtreeLast of every node, the
  // order by start and the item index; false if any is broken.
  bool verify() const {
    if (root_ != nullptr && (root_->parent != nullptr || root_->red)) return false;
    if (blackHeight(root_) < 0) return false;
    size_t count = 0;
    uint64_t prevStart = 0;
    bool sorted = true;
    forEach([&](Item, uint64_t start, uint64_t) {
      sorted = sorted && prevStart <= start;
      prevStart = start;
      ++count;
    });
    // Every node checked that the index points at it; equal counts then mean
    // the index holds nothing that is not in the tree.
    return sorted && count == nodes_.size();
  }

 private:
  enum Side : size_t { kLeft = 0, kRight = 1 };
  static constexpr Side other(Side s) { return s == kLeft ? kRight : kLeft; }

  struct Node {
    Item item;
    uint64_t start;
    uint64_t last;
    uint64_t subtreeLast;  // rb_subtree_last: max `last` of this subtree
    Node* parent = nullptr;
    std::array<Node*, 2> child{};  // [kLeft], [kRight]
    bool red = true;               // a new node is red until rebalanced
  };

  static bool isRed(const Node* n) { return n != nullptr && n->red; }
  static Side sideOf(const Node* n) { return n->parent->child[kRight] == n ? kRight : kLeft; }

  static Node* leftmost(Node* n) {
    while (n->child[kLeft] != nullptr) n = n->child[kLeft];
    return n;
  }

  static uint64_t computeSubtreeLast(const Node* n) {
    uint64_t max = n->last;
    for (const Node* c : n->child)
      if (c != nullptr && c->subtreeLast > max) max = c->subtreeLast;
    return max;
  }

  Node* nodeOf(Item item) const {
    auto it = nodes_.find(item);
    VFIOMM_ASSERT_MSG(it != nodes_.end(), "item is not in the tree");
    return it->second.get();
  }

  Node* newNode(Item item, uint64_t start, uint64_t last) {
    VFIOMM_ASSERT(start <= last);
    auto [it, inserted] =
        nodes_.try_emplace(item, std::unique_ptr<Node>(new Node{item, start, last, last}));
    VFIOMM_ASSERT_MSG(inserted, "item is already in the tree");
    return it->second.get();
  }

  // Hangs `repl` (possibly null) where `old` hangs.
  void replaceChild(Node* old, Node* repl) {
    if (repl != nullptr) repl->parent = old->parent;
    if (old->parent == nullptr)
      root_ = repl;
    else
      old->parent->child[sideOf(old)] = repl;
  }

  // Moves x down to its `down` side and its other child up into its place.
  void rotate(Node* x, Side down) {
    const Side up = other(down);
    Node* y = x->child[up];
    x->child[up] = y->child[down];
    if (y->child[down] != nullptr) y->child[down]->parent = x;
    replaceChild(x, y);
    y->child[down] = x;
    x->parent = y;
    // The rotated subtree holds the same nodes, so its new top inherits the
    // old top's max; only x, which lost a subtree, needs recomputing
    // (augment_rotate of RB_DECLARE_CALLBACKS_MAX).
    y->subtreeLast = x->subtreeLast;
    x->subtreeLast = computeSubtreeLast(x);
  }

  // rb_link_node + rb_insert_augmented.
  void link(Node* node, Node* parent, Side side) {
    node->parent = parent;
    if (parent == nullptr)
      root_ = node;
    else
      parent->child[side] = node;
    // subtreeLast never decreases towards the root, so the first ancestor
    // already covering node->last covers it for all above. Rotations in
    // insertFixup then keep the now-correct values correct.
    for (Node* a = parent; a != nullptr && a->subtreeLast < node->last; a = a->parent)
      a->subtreeLast = node->last;
    insertFixup(node);
  }

  // Restores "no red node has a red child" after linking the red `n`.
  void insertFixup(Node* n) {
    while (isRed(n->parent)) {
      Node* p = n->parent;
      Node* g = p->parent;  // p is red, so not the root
      const Side ps = sideOf(p);
      Node* uncle = g->child[other(ps)];
      if (isRed(uncle)) {
        // Push g's blackness down to both children and retry from g.
        p->red = false;
        uncle->red = false;
        g->red = true;
        n = g;
        continue;
      }
      if (sideOf(n) != ps) {
        // Zig-zag: turn it into a straight line before the final rotation.
        rotate(p, ps);
        n = p;
        p = n->parent;
      }
      p->red = false;
      g->red = true;
      rotate(g, other(ps));
    }
    root_->red = false;
  }

  // rb_erase_augmented: unlinks z, splicing in its successor if it has two
  // children, then rebalances.
  void unlink(Node* z) {
    Node* x = nullptr;        // the node that moved into the vacated slot
    Node* xParent = nullptr;  // its parent, kept separately as x may be null
    bool removedBlack = false;
    if (z->child[kLeft] == nullptr || z->child[kRight] == nullptr) {
      x = z->child[kLeft] != nullptr ? z->child[kLeft] : z->child[kRight];
      xParent = z->parent;
      removedBlack = !z->red;
      replaceChild(z, x);
    } else {
      // The successor y has no left child; it leaves its own slot to x and
      // takes over z's place, children and colour.
      Node* y = leftmost(z->child[kRight]);
      x = y->child[kRight];
      removedBlack = !y->red;
      if (y->parent == z) {
        xParent = y;
      } else {
        xParent = y->parent;
        replaceChild(y, x);
        y->child[kRight] = z->child[kRight];
        y->child[kRight]->parent = y;
      }
      replaceChild(z, y);
      y->child[kLeft] = z->child[kLeft];
      y->child[kLeft]->parent = y;
      y->red = z->red;
    }
    // Every node whose subtree lost z, or gained new children (y), lies on
    // the path from xParent to the root (y is xParent or above it).
    // eraseFixup's rotations rely on these values being right.
    for (Node* a = xParent; a != nullptr; a = a->parent) a->subtreeLast = computeSubtreeLast(a);
    if (removedBlack) eraseFixup(x, xParent);
  }

  // x's side of parent is one black short; borrow from the sibling w or
  // pass the deficit up.
  void eraseFixup(Node* x, Node* parent) {
    while (x != root_ && !isRed(x)) {
      // x may be null; w cannot be, as its side has a black node more.
      const Side xs = parent->child[kLeft] == x ? kLeft : kRight;
      const Side ws = other(xs);
      Node* w = parent->child[ws];
      if (isRed(w)) {
        w->red = false;
        parent->red = true;
        rotate(parent, xs);
        w = parent->child[ws];
      }
      if (!isRed(w->child[kLeft]) && !isRed(w->child[kRight])) {
        w->red = true;
        x = parent;
        parent = x->parent;
        continue;
      }
      if (!isRed(w->child[ws])) {
        w->child[xs]->red = false;
        w->red = true;
        rotate(w, ws);
        w = parent->child[ws];
      }
      w->red = parent->red;
      parent->red = false;
      w->child[ws]->red = false;
      rotate(parent, xs);
      x = root_;
    }
    if (x != nullptr) x->red = false;
  }

  // Pruned in-order walk; returns the number of nodes examined.
  template <typename Fn>
  static size_t walkOverlap(const Node* n, uint64_t first, uint64_t last, Fn& fn) {
    if (n == nullptr) return 0;
    // Everything in this subtree ends before the query starts.
    if (n->subtreeLast < first) return 1;
    size_t visits = 1 + walkOverlap(n->child[kLeft], first, last, fn);
    // n and everything right of it start after the query ends.
    if (n->start > last) return visits;
    if (n->last >= first) fn(n->item, n->start, n->last);
    return visits + walkOverlap(n->child[kRight], first, last, fn);
  }

  template <typename Fn>
  static void walkAll(const Node* n, Fn& fn) {
    if (n == nullptr) return;
    walkAll(n->child[kLeft], fn);
    fn(n->item, n->start, n->last);
    walkAll(n->child[kRight], fn);
  }

  // Black nodes on every path from n down to a leaf, or -1 if the paths
  // disagree or a node below n breaks another invariant.
  int blackHeight(const Node* n) const {
    if (n == nullptr) return 1;
    for (const Node* c : n->child)
      if (c != nullptr && (c->parent != n || (n->red && c->red))) return -1;
    if (n->start > n->last || n->subtreeLast != computeSubtreeLast(n)) return -1;
    auto it = nodes_.find(n->item);
    if (it == nodes_.end() || it->second.get() != n) return -1;
    const int left = blackHeight(n->child[kLeft]);
    if (left < 0 || left != blackHeight(n->child[kRight])) return -1;
    return left + (n->red ? 0 : 1);
  }

  Node* root_ = nullptr;
  // Owns the nodes and finds an item's node for erase and insertAfter.
  std::unordered_map<Item, std::unique_ptr<Node>> nodes_;
};

}  // namespace vfiomm
