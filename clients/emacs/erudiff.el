;;; erudiff.el --- Sample images from erudiffd into a buffer  -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (jsonrpc "1.0.14"))
;; Keywords: multimedia, tools
;; URL: clients/emacs/ in the erudiff repository

;;; Commentary:

;; A client of erudiffd, the daemon that keeps a text-to-image flow model warm, on Emacs's own
;; `jsonrpc.el' (the transport eglot uses: LSP's Content-Length framing, which the daemon detects
;; per connection).
;;
;;   M-x erudiff-sample-at-point   sample the region, the string literal at point, or the current
;;                                 line, and insert the image below it (C-u: ask for a seed);
;;                                 progress shows in the echo area; C-g cancels ($/cancelRequest)
;;   M-x erudiff-save-image        write the PNG of the image at point to a file
;;   M-x erudiff-status            the daemon's models and jobs, in the echo area
;;   M-x erudiff-disconnect        close the connection
;;
;; The socket is `erudiff-socket', else $ERUDIFF_SOCKET, else the daemon's default
;; ($XDG_RUNTIME_DIR/erudiff/erudiffd.sock, else /tmp/erudiff-UID/erudiffd.sock).  When nothing
;; answers there and `erudiff-start-daemon' is non-nil, `erudiff daemon start' (the shell client,
;; `erudiff-program') starts one and says where it listens.  See clients/emacs/README.md.

;;; Code:

(require 'cl-lib)
(require 'jsonrpc)
(require 'subr-x)

(defgroup erudiff nil
  "Sample images from erudiffd, the text-to-image daemon."
  :group 'multimedia
  :prefix "erudiff-")

(defcustom erudiff-socket nil
  "Socket of erudiffd; nil means $ERUDIFF_SOCKET, else the daemon's default path."
  :type '(choice (const :tag "Default" nil) file))

(defcustom erudiff-start-daemon t
  "Non-nil: when no daemon answers, start one with `erudiff-program' daemon start.
$ERUDIFF_NO_AUTOSTART set (to anything but 0) turns it off, as in the
other clients."
  :type 'boolean)

(defcustom erudiff-program nil
  "The erudiff shell client, used to start the daemon.
nil means `erudiff' on `exec-path', else clients/erudiff beside this
file in a checkout of erudiff."
  :type '(choice (const :tag "Find it" nil) file))

(defcustom erudiff-sample-params nil
  "Extra parameters of `sample' (protocol/openrpc.json), as a plist.
For example (:steps 16 :guidance 4.0 :model \"mini\")."
  :type 'plist)

(defcustom erudiff-image-scale 4
  "How many times larger than its pixels an inserted image is shown."
  :type 'number)

(defcustom erudiff-events-buffer-size 0
  "Size of the *erudiff events* log of JSON-RPC messages.
0 keeps none, nil sets no limit."
  :type '(choice (const :tag "No limit" nil) integer))

(define-error 'erudiff-error "erudiff")

(defconst erudiff--directory
  (file-name-directory (or load-file-name buffer-file-name default-directory))
  "Where this file is (a checkout's clients/emacs/).")

(defvar erudiff--connection nil "The live `erudiff-rpc-connection', or nil.")
(defvar erudiff--progress-handlers (make-hash-table :test #'equal)
  "Progress token -> function of the `$/progress' value.")
(defvar erudiff--tokens 0 "Counter of progress tokens.")


;;; The connection

(defclass erudiff-rpc-connection (jsonrpc-process-connection)
  ((last-request-id :initform nil :accessor erudiff--last-request-id
                    :documentation "Id of the request sent last (for `$/cancelRequest')."))
  :documentation "A JSON-RPC connection to erudiffd over its Unix socket.")

(cl-defmethod jsonrpc-connection-send :after ((conn erudiff-rpc-connection) &rest args)
  "Remember the id of each request CONN sends (ARGS hold :id and :method)."
  (when (and (plist-get args :id) (plist-get args :method))
    (setf (erudiff--last-request-id conn) (plist-get args :id))))

(defun erudiff--default-socket ()
  "$ERUDIFF_SOCKET, else the daemon's default socket path."
  (let ((env (getenv "ERUDIFF_SOCKET"))
        (runtime (getenv "XDG_RUNTIME_DIR")))
    (cond ((and env (not (string-empty-p env))) env)
          ((and runtime (not (string-empty-p runtime)))
           (expand-file-name "erudiff/erudiffd.sock" runtime))
          (t (format "/tmp/erudiff-%d/erudiffd.sock" (user-uid))))))

(defun erudiff--may-start ()
  "Non-nil when the package may start a daemon."
  (and erudiff-start-daemon
       (member (or (getenv "ERUDIFF_NO_AUTOSTART") "") '("" "0"))))

(defun erudiff--program ()
  "The shell client that starts the daemon, or nil."
  (or erudiff-program
      (executable-find "erudiff")
      (let ((sibling (expand-file-name "../erudiff" erudiff--directory)))
        (and (file-executable-p sibling) sibling))))

(defun erudiff--notification (_conn method params)
  "Route `$/progress' PARAMS to their request's handler (METHOD is a symbol)."
  (when (eq method '$/progress)
    (let ((handler (gethash (format "%s" (plist-get params :token)) erudiff--progress-handlers)))
      (when handler
        (funcall handler (plist-get params :value))))))

(defun erudiff--open (path)
  "Connect to the daemon's socket PATH; `file-error' if nothing answers."
  (let* ((proc (make-network-process :name "erudiff" :family 'local :service (expand-file-name path)
                                     :coding 'utf-8-emacs-unix :noquery t))
         (conn (make-instance 'erudiff-rpc-connection
                              :name "erudiff" :process proc
                              :events-buffer-scrollback-size erudiff-events-buffer-size
                              :notification-dispatcher #'erudiff--notification
                              :on-shutdown (lambda (c) (when (eq c erudiff--connection)
                                                         (setq erudiff--connection nil))))))
    (setq erudiff--connection conn)))

(defun erudiff--start (path)
  "Start a daemon with the shell client and return its socket path.
PATH, if non-nil, is the socket it is to listen on."
  (let ((program (erudiff--program))
        (stderr (make-temp-file "erudiff-start")))
    (unless program
      (user-error "erudiff: no daemon answers and the erudiff shell client is not found (set `erudiff-program')"))
    (unwind-protect
        (with-temp-buffer
          (message "erudiff: starting the daemon (%s daemon start)..." program)
          (let* ((args (append (and path (list "--socket" path)) '("daemon" "start")))
                 (status (apply #'call-process program nil (list t stderr) nil args))
                 (out (string-trim (buffer-string))))
            (unless (and (eql status 0) (not (string-empty-p out)))
              (error "erudiff: `%s %s' failed (%s): %s" program (string-join args " ") status
                     (with-temp-buffer (insert-file-contents stderr) (string-trim (buffer-string)))))
            (car (last (split-string out "\n" t "[ \t\r]+")))))
      (delete-file stderr))))

(defun erudiff-connection ()
  "The connection to erudiffd: the open one, else a new one.
When nothing answers and `erudiff-start-daemon' is non-nil, start one."
  (if (and erudiff--connection (jsonrpc-running-p erudiff--connection))
      erudiff--connection
    (let ((path (or erudiff-socket (erudiff--default-socket))))
      (condition-case err
          (erudiff--open path)
        (file-error
         (unless (erudiff--may-start)
           (user-error "erudiff: cannot connect to erudiffd at %s (%s); start it (%s)" path
                       (error-message-string err)
                       (if erudiff-start-daemon "ERUDIFF_NO_AUTOSTART is set" "`erudiff-start-daemon' is nil")))
         (erudiff--open (erudiff--start erudiff-socket)))))))

(defun erudiff-disconnect ()
  "Close the connection to erudiffd (the daemon goes on)."
  (interactive)
  (when erudiff--connection
    (let ((conn erudiff--connection))
      (setq erudiff--connection nil)
      (jsonrpc-shutdown conn t))))


;;; Requests

(defun erudiff--progress-message (method value)
  "Show the `$/progress' VALUE of METHOD in the echo area."
  (let ((message-log-max nil)
        (kind (plist-get value :kind))
        (pct (plist-get value :percentage))
        (msg (or (plist-get value :message) "")))
    (pcase kind
      ((or "begin" "report")
       (message "erudiff: %s %s%s  (C-g cancels)" method (if pct (format "%d%% " pct) "") msg))
      ("end" (message "erudiff: %s %s" method msg)))))

(defun erudiff-call (method &optional params progress)
  "Call METHOD (a string) with PARAMS (a plist) and return the result.
With PROGRESS non-nil the request asks for `$/progress' and shows it in
the echo area.  Waits for the reply; \\[keyboard-quit] cancels the request
\(`$/cancelRequest') and quits.  A JSON-RPC error signals `erudiff-error'
with data (MESSAGE CODE DATA)."
  (let* ((conn (erudiff-connection))
         (token (and progress (format "erudiff-el-%d-%d" (emacs-pid) (cl-incf erudiff--tokens))))
         ;; nil goes out as {}, not as jsonrpc.el's null (JSON-RPC wants params omitted or structured)
         (params (cond (token (append params (list :workDoneToken token)))
                       (params)
                       (t (make-hash-table))))
         (outcome nil) (abandoned nil) id)
    (when token
      (puthash token (lambda (value) (erudiff--progress-message method value)) erudiff--progress-handlers))
    (unwind-protect
        (progn
          (jsonrpc-async-request conn (intern method) params
                                 :success-fn (lambda (result) (setq outcome (list 'ok result)))
                                 :error-fn (lambda (err)
                                             (if abandoned   ; the reply to a cancelled request
                                                 (message "erudiff: the daemon stopped %s: %s" method
                                                          (plist-get err :message))
                                               (setq outcome (list 'error err))))
                                 :timeout nil)
          (setq id (erudiff--last-request-id conn))
          (condition-case nil
              (while (not outcome)
                (accept-process-output nil 0.1))
            (quit
             (setq abandoned t)
             (when (jsonrpc-running-p conn)
               (jsonrpc-notify conn :$/cancelRequest (list :id id)))
             (message "erudiff: %s cancelled" method)
             (signal 'quit nil))))
      (when token (remhash token erudiff--progress-handlers)))
    (pcase outcome
      (`(ok ,result) result)
      (`(error ,err)
       (let ((code (plist-get err :code)) (text (plist-get err :message)))
         (signal 'erudiff-error (list (format "%s failed: %s (%s)" method text code) code
                                      (plist-get err :data))))))))


;;; Commands

(defun erudiff--prompt-bounds ()
  "(START . END) of the prompt.
The region, else the string literal at point, else the current line."
  (cond
   ((use-region-p) (cons (region-beginning) (region-end)))
   ((let ((ppss (syntax-ppss)))
      (when (nth 3 ppss)
        (let ((end (ignore-errors (scan-sexps (nth 8 ppss) 1))))
          (and end (cons (1+ (nth 8 ppss)) (1- end)))))))
   (t (cons (line-beginning-position) (line-end-position)))))

(defun erudiff--image (png)
  "An image descriptor of the PNG bytes, scaled by `erudiff-image-scale'.
Where Emacs cannot show PNG (a terminal), the descriptor is kept all the
same, so the image can be saved and shows in a graphical frame."
  (if (image-type-available-p 'png)
      (create-image png 'png t :scale erudiff-image-scale :transform-smoothing nil)
    (list 'image :type 'png :data png :scale erudiff-image-scale)))

(defun erudiff--insert-image (record pos)
  "Insert the image of sample RECORD on a new line after the line of POS.
RECORD is one of `sample''s images, as a plist.  Returns the end of the
inserted image."
  (let* ((png (base64-decode-string (plist-get record :png)))
         (alt (format "[erudiff: %s, seed %s]" (plist-get record :prompt) (plist-get record :seed))))
    (save-excursion
      (goto-char pos)
      (end-of-line)
      (insert "\n")
      (insert-image (erudiff--image png) alt)
      (put-text-property (- (point) (length alt)) (point) 'erudiff-sample
                         (list :id (plist-get record :id) :prompt (plist-get record :prompt)
                               :seed (plist-get record :seed)))
      (point))))

(defun erudiff-sample-at-point (&optional seed)
  "Sample the prompt at point and insert its image below it.
The prompt is the region when active, else the string literal at point,
else the current line.  With a prefix argument, ask for SEED.  Progress
shows in the echo area; \\[keyboard-quit] cancels.  `erudiff-sample-params'
adds parameters (steps, guidance, model, ...)."
  (interactive (list (and current-prefix-arg (read-number "Seed: "))))
  (let* ((bounds (erudiff--prompt-bounds))
         (prompt (string-trim (buffer-substring-no-properties (car bounds) (cdr bounds))))
         (params (append (list :prompt prompt) (and seed (list :seed seed)) erudiff-sample-params))
         (start (float-time)))
    (when (string-empty-p prompt)
      (user-error "erudiff: no prompt at point (select one, or put point on a line or in a string)"))
    (deactivate-mark)
    (let* ((result (erudiff-call "sample" params t))
           (images (append (plist-get result :images) nil))
           (pos (cdr bounds)))
      (dolist (record images)
        (setq pos (erudiff--insert-image record pos)))
      (message "erudiff: %d image(s) of \"%s\" in %.1f s" (length images) prompt (- (float-time) start))
      images)))

(defun erudiff-save-image (file)
  "Write the PNG of the erudiff image at point to FILE."
  (interactive (list (read-file-name "Save the PNG to: ")))
  (let* ((spec (get-text-property (point) 'display))
         (png (and (eq (car-safe spec) 'image) (plist-get (cdr spec) :data))))
    (unless png (user-error "erudiff: no image at point"))
    (let ((coding-system-for-write 'binary))
      (write-region png nil file))
    file))

(defun erudiff-status ()
  "Show the daemon's models and jobs in the echo area; return the status."
  (interactive)
  (let* ((status (erudiff-call "status"))
         (models (mapconcat (lambda (m) (plist-get m :name)) (plist-get status :models) ", "))
         (jobs (length (plist-get status :jobs))))
    (message "erudiff: pid %s, up %.0f s, models: %s, %d job(s)" (plist-get status :pid)
             (/ (plist-get status :uptimeMs) 1000.0) (if (string-empty-p models) "none" models) jobs)
    status))

(provide 'erudiff)
;;; erudiff.el ends here
